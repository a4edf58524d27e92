//! Credentials: random tokens (256 bits, shown once, stored as sha256), argon2id passwords, and
//! the guard layer through which every `/api/v1` route passes. Handlers get the caller only from
//! the guard (as an `Extension<Caller>`), so a route without a guard fails closed with a 500
//! instead of running unauthenticated.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use paddock_core::{Name, Privilege};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::tokens::TokenOwner;
use crate::error::ApiError;
use crate::state::AppState;

/// Prefix of user API tokens.
pub const USER_TOKEN_PREFIX: &str = "pdk_";
/// Prefix of supervisor tokens.
pub const SUPERVISOR_TOKEN_PREFIX: &str = "pds_";

/// A fresh token: prefix + 64 hex characters (256 random bits).
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A short random id for a token record (not secret).
pub fn new_token_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Tokens carry 256 bits of entropy, so one sha256 is a sufficient one-way hash.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Name,
    pub privileges: Vec<Privilege>,
    pub token_id: String,
    /// When the caller's token expires (ms since the epoch); never when `None`.
    pub token_expires_at: Option<i64>,
}

impl Caller {
    pub fn has(&self, p: Privilege) -> bool {
        p.granted_by(&self.privileges)
    }
}

/// What a route requires: any authenticated user, or one of some privileges.
#[derive(Debug, Clone, Copy)]
pub struct Guard(pub &'static [Privilege]);

pub fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The guard middleware: authenticates the bearer token, checks the route's privileges, and
/// hands the caller to the handler.
pub async fn guard(
    State((app, guard)): State<(AppState, Guard)>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer(&req).ok_or(ApiError::Unauthorized)?;
    let owner: TokenOwner = app
        .db
        .token_owner(&hash_token(token), paddock_core::api::now_ms())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let caller = Caller {
        user: owner.user,
        privileges: owner.privileges,
        token_id: owner.token_id,
        token_expires_at: owner.expires_at,
    };
    if !guard.0.is_empty() && !guard.0.iter().any(|p| caller.has(*p)) {
        let names: Vec<&str> = guard.0.iter().map(|p| p.as_str()).collect();
        return Err(ApiError::Forbidden(names.join(" or ")));
    }
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = new_token(USER_TOKEN_PREFIX);
        let b = new_token(USER_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_ne!(hash_token(&a), a);
        assert_eq!(hash_token(&a), hash_token(&a));
    }

    #[test]
    fn passwords_use_argon2id() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
