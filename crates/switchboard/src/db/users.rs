//! Users: name, email, argon2id password hash, privileges.

use paddock_core::api::format_ms;
use paddock_core::api::users::UserView;
use paddock_core::{Name, Privilege};
use sqlx::Row;

use super::{Db, Result, StoreError, parse_col};

#[derive(Debug, Clone)]
pub struct User {
    pub name: Name,
    pub email: Option<String>,
    pub privileges: Vec<Privilege>,
    pub created_at: i64,
}

impl User {
    pub fn view(&self) -> UserView {
        UserView {
            name: self.name.clone(),
            email: self.email.clone(),
            privileges: self.privileges.clone(),
            created_at: format_ms(self.created_at),
        }
    }
}

pub(crate) fn join_privileges(p: &[Privilege]) -> String {
    p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

pub(crate) fn split_privileges(s: &str) -> Result<Vec<Privilege>> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|p| parse_col("privileges", p))
        .collect()
}

fn row_to_user(row: &sqlx::any::AnyRow) -> Result<User> {
    Ok(User {
        name: parse_col("name", &row.try_get::<String, _>("name")?)?,
        email: row.try_get("email")?,
        privileges: split_privileges(&row.try_get::<String, _>("privileges")?)?,
        created_at: row.try_get("created_at")?,
    })
}

impl Db {
    pub async fn create_user(
        &self,
        name: &Name,
        email: Option<&str>,
        privileges: &[Privilege],
    ) -> Result<User> {
        let now = paddock_core::api::now_ms();
        let r = sqlx::query("INSERT INTO users (name, email, password_hash, privileges, created_at) VALUES ($1, $2, NULL, $3, $4)")
            .bind(name.as_str())
            .bind(email)
            .bind(join_privileges(privileges))
            .bind(now)
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => Ok(User {
                name: name.clone(),
                email: email.map(str::to_string),
                privileges: privileges.to_vec(),
                created_at: now,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!("user {name} already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_user(&self, name: &Name) -> Result<User> {
        let row =
            sqlx::query("SELECT name, email, privileges, created_at FROM users WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&self.reader)
                .await?
                .ok_or(StoreError::NotFound)?;
        row_to_user(&row)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows =
            sqlx::query("SELECT name, email, privileges, created_at FROM users ORDER BY name")
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(row_to_user).collect()
    }

    pub async fn set_password_hash(&self, name: &Name, hash: &str) -> Result<()> {
        let r = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
            .bind(hash)
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    pub async fn password_hash(&self, name: &Name) -> Result<Option<String>> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("password_hash"))
            .transpose()?
            .flatten())
    }
}
