//! The deployments DB: the YAML files of the deployments repo (`db/switchboard.yaml`,
//! `db/sites/<site>.yaml`), their schema, and whole-repo validation with every error located
//! as `file:line:column: field: message`. See docs/deployments.md.

pub mod decode;
pub mod diagnostic;
pub mod limits;
pub mod load;
pub mod plan;
pub mod schema;
pub mod supervisor_config;
pub mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, Pos};
pub use load::{SITES_DIR, SWITCHBOARD_FILE, is_db_file, load, load_read};
pub use plan::{Change, plan};
pub use schema::*;
pub use supervisor_config::{config_of, supervisor_config};
