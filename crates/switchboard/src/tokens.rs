//! Minting user tokens: used by the API (login, new token, new user) and by the command line
//! (`user add`), so both store tokens the same way.

use paddock_core::Name;
use paddock_core::api::auth::NewToken;

use crate::auth::{USER_TOKEN_PREFIX, hash_token, new_token, new_token_id};
use crate::db::{Db, Result};

/// Creates a token for `user`, valid for `ttl_s` seconds (forever when `None`), and returns
/// its value: the only time it is ever seen.
pub async fn mint(db: &Db, user: &Name, ttl_s: Option<u64>) -> Result<NewToken> {
    let token = new_token(USER_TOKEN_PREFIX);
    let id = new_token_id();
    let expires_at = ttl_s.map(|t| {
        paddock_core::api::now_ms().saturating_add((t.min(100 * 365 * 86400) * 1000) as i64)
    });
    db.insert_token(&id, user, &hash_token(&token), expires_at)
        .await?;
    Ok(NewToken {
        id,
        token,
        user: user.clone(),
        expires_at: expires_at.map(paddock_core::api::format_ms),
    })
}
