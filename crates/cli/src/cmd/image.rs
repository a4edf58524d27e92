//! `paddock image import|list`: local image stores (the image store server and `push`,
//! `pull`, `mirror` come with the image store issue).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use paddock_imagestore::LocalStore;
use paddock_imagestore::import::ImportOptions;

#[derive(Debug, Args)]
pub struct StoreArg {
    /// The local image store directory (`paddock up` uses DATA_DIR/store).
    #[arg(long, env = "PADDOCK_STORE", default_value = ".paddock/store")]
    store: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build a local-driver image from a script file or a directory; prints the image id.
    Import {
        /// A script to run, or a directory to archive (its entry point is run).
        source: PathBuf,
        #[arg(long)]
        label: String,
        /// Default: one more than the newest revision of this label in the store.
        #[arg(long)]
        revision: Option<u64>,
        #[arg(long, default_value = "")]
        description: String,
        /// For a directory: the file inside it to run.
        #[arg(long, default_value = "run.sh")]
        entry_point: String,
        /// The job becomes ready only when the workload runs `paddock-puppet ready`
        /// (default: as soon as it starts).
        #[arg(long)]
        ready_on_puppet: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List the store's images: label, revision, id, size.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
}

pub fn run(cmd: ImageCommand) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Import {
            source,
            label,
            revision,
            description,
            entry_point,
            ready_on_puppet,
            store,
        } => {
            let s = LocalStore::new(&store.store);
            let opts = ImportOptions {
                label,
                revision,
                description,
                entry_point: Some(entry_point),
                ready_on_puppet,
            };
            let id = s
                .import(&source, &opts)
                .with_context(|| format!("importing {}", source.display()))?;
            eprintln!(
                "imported {} into {}",
                source.display(),
                store.store.display()
            );
            println!("{id}");
        }
        ImageCommand::List { json, store } => {
            let images = LocalStore::new(&store.store)
                .list()
                .with_context(|| format!("reading {}", store.store.display()))?;
            if json {
                let v: Vec<serde_json::Value> = images
                    .iter()
                    .map(|i| {
                        serde_json::json!({
                            "id": i.id, "label": i.label, "revision": i.revision,
                            "description": i.description, "size": i.size,
                        })
                    })
                    .collect();
                super::print_json(&serde_json::Value::Array(v));
            } else {
                println!("{:<32}  {:>8}  {:<64}  SIZE", "LABEL", "REVISION", "ID");
                for i in images {
                    println!(
                        "{:<32}  {:>8}  {:<64}  {}",
                        i.label, i.revision, i.id, i.size
                    );
                }
            }
        }
    }
    Ok(())
}
