//! Minting user tokens: used by the API (login, new token, new user) and by the command line
//! (`user add`), so both store tokens the same way.

use paddock_core::Name;
use paddock_core::api::auth::NewToken;

use crate::auth::{USER_TOKEN_PREFIX, hash_token, new_token, new_token_id};
use crate::db::{Db, Result};

/// The lifetime, in seconds, of a token made through the API: `requested`, or `default` when
/// absent; at most `max`; and never past `parent_expires_at` (ms since the epoch), the expiry
/// of the token it is made with, so a short-lived token cannot mint a longer-lived one. An
/// absent request is shortened to fit; an explicit one that does not fit is refused, with the
/// reason.
pub fn lifetime_s(
    requested: Option<u64>,
    default: u64,
    max: u64,
    parent_expires_at: Option<i64>,
    now_ms: i64,
) -> std::result::Result<u64, String> {
    if let Some(r) = requested
        && (r == 0 || r > max)
    {
        return Err(format!(
            "expires_in_s: must be between 1 and {max} (this switchboard's max_token_ttl_s)"
        ));
    }
    let ttl = requested.unwrap_or(default.min(max));
    let Some(parent) = parent_expires_at else {
        return Ok(ttl);
    };
    let left_s = u64::try_from(parent.saturating_sub(now_ms) / 1000).unwrap_or(0);
    match requested {
        Some(r) if r > left_s => Err(format!(
            "expires_in_s: a token cannot outlive the token that makes it ({left_s} s left)"
        )),
        _ if left_s == 0 => Err("the token that makes it expires within a second".into()),
        _ => Ok(ttl.min(left_s)),
    }
}

/// Creates a token for `user`, valid for `ttl_s` seconds (forever when `None`), and returns
/// its value: the only time it is ever seen.
pub async fn mint(db: &Db, user: &Name, ttl_s: Option<u64>) -> Result<NewToken> {
    mint_within(db, user, ttl_s, None).await
}

/// [`mint`], never expiring after `not_after` (ms since the epoch; the token it is made with),
/// to the millisecond.
pub async fn mint_within(
    db: &Db,
    user: &Name,
    ttl_s: Option<u64>,
    not_after: Option<i64>,
) -> Result<NewToken> {
    let token = new_token(USER_TOKEN_PREFIX);
    let id = new_token_id();
    let expires_at = ttl_s.map(|t| {
        let at =
            paddock_core::api::now_ms().saturating_add((t.min(100 * 365 * 86400) * 1000) as i64);
        not_after.map_or(at, |n| at.min(n))
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

#[cfg(test)]
mod tests {
    use super::lifetime_s;

    #[test]
    fn a_token_never_outlives_its_parent_nor_the_maximum() {
        let now = 1_000_000;
        // No parent: the request, or the default, within the maximum.
        assert_eq!(lifetime_s(None, 600, 3600, None, now), Ok(600));
        assert_eq!(lifetime_s(Some(60), 600, 3600, None, now), Ok(60));
        assert_eq!(lifetime_s(None, 7200, 3600, None, now), Ok(3600));
        assert!(lifetime_s(Some(3601), 600, 3600, None, now).is_err());
        assert!(lifetime_s(Some(0), 600, 3600, None, now).is_err());
        // A parent with 5 s left: the default shrinks to fit; a longer request is refused.
        let parent = Some(now + 5_500);
        assert_eq!(lifetime_s(None, 600, 3600, parent, now), Ok(5));
        assert_eq!(lifetime_s(Some(5), 600, 3600, parent, now), Ok(5));
        let e = lifetime_s(Some(6), 600, 3600, parent, now).unwrap_err();
        assert!(e.contains("outlive"), "{e}");
        assert!(lifetime_s(None, 600, 3600, Some(now + 400), now).is_err());
    }
}
