//! Login and API tokens (`/api/v1/login`, `/api/v1/tokens`).

use serde::{Deserialize, Serialize};

use crate::{Name, Privilege};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub user: Name,
    pub password: String,
    /// Lifetime of the new token; the server's default when absent.
    #[serde(default)]
    pub expires_in_s: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    #[serde(default)]
    pub expires_in_s: Option<u64>,
}

/// A freshly minted token. The only answer that ever carries a token's value.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewToken {
    pub id: String,
    pub token: String,
    pub user: Name,
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Who the caller is (`GET /api/v1/whoami`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoAmI {
    pub user: Name,
    pub privileges: Vec<Privilege>,
    pub token_id: String,
}
