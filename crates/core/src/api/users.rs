//! Users (`/api/v1/users`).

use serde::{Deserialize, Serialize};

use crate::{Name, Privilege};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub name: Name,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub privileges: Vec<Privilege>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserView {
    pub name: Name,
    pub email: Option<String>,
    pub privileges: Vec<Privilege>,
    pub created_at: String,
}
