//! API tokens of users: stored only as sha256 hashes, with expiry and revocation.

use paddock_core::{Name, Privilege};
use sqlx::Row;

use super::users::split_privileges;
use super::{Db, Result, StoreError, parse_col};

/// The user behind a valid token.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub token_id: String,
    pub user: Name,
    pub privileges: Vec<Privilege>,
    /// When the token expires (ms since the epoch); never when `None`.
    pub expires_at: Option<i64>,
}

impl Db {
    pub async fn insert_token(
        &self,
        id: &str,
        user: &Name,
        token_hash: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO api_tokens (id, user_name, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(user.as_str())
            .bind(token_hash)
            .bind(paddock_core::api::now_ms())
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The owner of a token hash, if the token exists, is not revoked and has not expired.
    pub async fn token_owner(&self, token_hash: &str, now: i64) -> Result<Option<TokenOwner>> {
        let row = sqlx::query(
            "SELECT t.id, t.expires_at, u.name, u.privileges FROM api_tokens t JOIN users u ON u.name = t.user_name \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TokenOwner {
            token_id: row.try_get("id")?,
            user: parse_col("name", &row.try_get::<String, _>("name")?)?,
            privileges: split_privileges(&row.try_get::<String, _>("privileges")?)?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// Revokes a token; `owner` restricts it to that user's tokens.
    pub async fn revoke_token(&self, id: &str, owner: Option<&Name>) -> Result<()> {
        let now = paddock_core::api::now_ms();
        let r = match owner {
            Some(owner) => {
                sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND user_name = $3")
                    .bind(now)
                    .bind(id)
                    .bind(owner.as_str())
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await?
            }
        };
        if r.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }
}
