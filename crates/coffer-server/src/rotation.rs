//! Crash-safe password rotation for rotated secrets, and the scheduler
//! that runs it on every node (one node per item at a time: a time-limited
//! claim on the item's producer row).
//!
//! A rotation is two committed steps around the database change:
//! 1. the new password is stored as a *pending* version (not current);
//! 2. the database user's password is changed, a login with it is tried,
//!    and only then the pending version becomes current.
//!
//! A crash or failure between them leaves a pending version; the next pass
//! (the scheduler picks up pending rotations at once) tries the pending
//! password and then the current one, and keeps whichever logs in. The
//! current stored value is replaced only by one that has logged in.

use std::sync::Arc;
use std::time::Duration;

use coffer_core::audit::{AuditRecord, Outcome};
use coffer_core::model::{Item, Target};
use coffer_store::Audit;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::dbconn::DbConnSpec;
use crate::error::ApiError;
use crate::ops::dynamic::new_password;
use crate::ops::items::{open_item_value, seal as seal_value};
use crate::ops::rotated::{self, Creds, RotatedSettings, Rotator, SUCCEEDED, next_rotation};
use crate::ops::targets::{find_target, open_password, settings_of};
use crate::state::{AppState, now_ms, system_record};

/// How long a node holds an item while rotating it.
const CLAIM_MS: i64 = 120_000;
/// After a failed automatic rotation, the next try.
const RETRY_MS: i64 = 3_600_000;

/// Write a change with a copy of `template` as its record.
fn record(template: &AuditRecord, operation: &str, error: Option<&str>) -> AuditRecord {
    let mut r = template.clone();
    r.time_ms = now_ms();
    r.operation = operation.to_owned();
    if let Some(e) = error {
        r.outcome = Outcome::Error;
        r.status = 502;
        r.error = e.to_owned();
    }
    r
}

/// A target's current admin password: its own sealed one, or, when a
/// rotated secret rotates it, that secret's current value.
pub(crate) async fn target_password(
    state: &AppState,
    t: &Target,
) -> Result<Zeroizing<String>, ApiError> {
    state.keys.load_missing(&*state.store, t.key_id).await;
    match rotated::rotating_item(t) {
        Some(item_name) => match current_creds(state, &item_name).await {
            Ok(creds) => Ok(Zeroizing::new(creds.password.clone())),
            // A link whose item was never created (or is gone): the
            // target's own password.
            Err(ApiError::NotFound(_)) => open_password(state, t),
            Err(e) => Err(e),
        },
        None => open_password(state, t),
    }
}

async fn current_creds(state: &AppState, name: &str) -> Result<Creds, ApiError> {
    let plain = open_item_value(state, name, None).await?;
    Creds::parse(&plain)
}

/// Mark a target as rotated by `item` (its password is that item's value
/// from now on), or, with `None`, give it back its own password (the
/// rotated item's current value).
pub(crate) async fn link_target(
    state: &AppState,
    target: &str,
    item: Option<&str>,
    mut rec: AuditRecord,
) -> Result<(), ApiError> {
    let t = find_target(state, target).await?;
    if let (Some(new), Some(owner)) = (item, rotated::rotating_item(&t))
        && owner != new
    {
        return Err(ApiError::Conflict(format!(
            "target {target:?} is rotated by {owner:?} already"
        )));
    }
    let pwd = target_password(state, &t).await?;
    let mut details = t.details.clone();
    details["rotated_by"] = serde_json::Value::String(item.unwrap_or_default().to_owned());
    let version = t.version + 1;
    let key_id = state.keys.active_key_id();
    let sealed = state
        .keys
        .data_key(key_id)?
        .seal(pwd.as_bytes(), &coffer_crypto::target_aad(t.id, version))?;
    let nt = Target {
        details,
        key_id,
        sealed,
        version,
        modified_ms: now_ms(),
        ..t
    };
    state
        .store
        .update_target(&nt, Audit::new(&mut rec, &*state.keys.audit))
        .await?;
    state.audited(rec.seq);
    Ok(())
}

/// The connection a login check uses: the target's, without its database
/// on MySQL (a rotated user need not have rights on the admin's database;
/// PostgreSQL needs one to connect to, and every role may connect to it by
/// default).
pub(crate) fn login_spec(spec: &DbConnSpec) -> DbConnSpec {
    let mut s = spec.clone();
    if s.kind == coffer_core::dbsql::DbKind::MySql {
        s.db_name.clear();
    }
    s
}

/// The connection that changes the password, and the one that checks a
/// login (the target's host with the rotated user).
async fn specs(
    state: &AppState,
    s: &RotatedSettings,
    current: &Creds,
) -> Result<(DbConnSpec, DbConnSpec), ApiError> {
    let t = find_target(state, &s.target).await?;
    let settings = settings_of(&t)?;
    let admin_pwd = target_password(state, &t).await?;
    let admin = settings.spec(&admin_pwd)?;
    let changer = match (s.rotator, s.use_user_creds) {
        // The user changes its own password.
        (Rotator::Target, _) | (Rotator::Password, true) => DbConnSpec {
            user: current.username.clone(),
            password: SecretString::from(current.password.clone()),
            ..admin.clone()
        },
        (Rotator::Password, false) => admin.clone(),
    };
    Ok((login_spec(&changer), login_spec(&admin)))
}

/// Rotate an item now (on request, or when due). Errors say what failed;
/// the old value stays current on any failure.
pub(crate) async fn rotate(
    state: &Arc<AppState>,
    item: &Item,
    template: AuditRecord,
) -> Result<(), ApiError> {
    let node = state.request_prefix.as_str();
    let now = now_ms();
    if !state
        .store
        .claim_producer(item.id, node, now, now + CLAIM_MS)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "a rotation of {:?} is in progress (on this or another node); retry in a minute",
            item.name
        )));
    }
    let result = rotate_claimed(state, &item.name, &template).await;
    // Every successful path released the claim with its last change.
    if result.is_err()
        && let Err(e) = state.store.release_producer(item.id, node).await
    {
        tracing::warn!(item = %item.name, error = %e, "cannot release a rotation claim (it runs out)");
    }
    result
}

async fn rotate_claimed(
    state: &Arc<AppState>,
    name: &str,
    template: &AuditRecord,
) -> Result<(), ApiError> {
    let item = rotated::find_rotated(state, name).await?;
    let (p, s) = rotated::load(state, &item).await?;
    let current = current_creds(state, name).await?;
    if let Some(v) = p.pending_version {
        return recover(state, &item, &s, &current, v, template)
            .await
            .map(|_| ());
    }
    let (changer, checker) = specs(state, &s, &current).await?;
    let new = Creds {
        username: current.username.clone(),
        password: new_password(s.password_length, s.password_rules)?.to_string(),
    };
    let v = item.highest_version + 1;
    let sealed = seal_value(state, item.id, v, &new.to_json())?;
    let mut rec = record(template, "rotate-prepare", None);
    state
        .store
        .add_pending_version(
            item.id,
            item.highest_version,
            &sealed,
            Audit::new(&mut rec, &*state.keys.audit),
        )
        .await?;
    state.audited(rec.seq);
    renew(state, &item).await?;
    let changed = if changer.user == new.username {
        state.db.set_own_password(&changer, &new.password).await
    } else {
        state
            .db
            .set_password(&changer, &new.username, &new.password)
            .await
    };
    let failure = match changed {
        // The change may still have reached the database (a timeout after
        // its commit, one MySQL host of several): decide by logging in.
        Err(e) => format!("changing the password failed: {e}"),
        Ok(()) => match state
            .db
            .login_check(&checker, &new.username, &new.password)
            .await
        {
            Ok(()) => {
                renew(state, &item).await?;
                return promote(state, &item, &s, v, template).await;
            }
            Err(e) => format!("the new password was set but a login with it failed: {e}"),
        },
    };
    renew(state, &item).await?;
    match recover(state, &item, &s, &current, v, template).await? {
        Recovered::Promoted => Ok(()),
        Recovered::RolledBack => Err(ApiError::Upstream(format!(
            "rotation of {name:?} failed, the old password stays current: {failure}"
        ))),
    }
}

/// Extend this node's claim before the next step; fail if another node
/// took the item over (its claim ran out: this node must not write).
async fn renew(state: &AppState, item: &Item) -> Result<(), ApiError> {
    let now = now_ms();
    if state
        .store
        .claim_producer(item.id, &state.request_prefix, now, now + CLAIM_MS)
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::Conflict(format!(
            "the rotation of {:?} was taken over by another node",
            item.name
        )))
    }
}

async fn promote(
    state: &AppState,
    item: &Item,
    s: &RotatedSettings,
    v: i32,
    template: &AuditRecord,
) -> Result<(), ApiError> {
    let now = now_ms();
    let mut rec = record(template, "rotate", None);
    state
        .store
        .promote_pending(
            item.id,
            &state.request_prefix,
            v,
            s.max_versions,
            SUCCEEDED,
            now,
            next_rotation(s, now),
            Audit::new(&mut rec, &*state.keys.audit),
        )
        .await?;
    state.audited(rec.seq);
    state.items.remove(item.name.as_str());
    Ok(())
}

/// Record a failed rotation (status, the next try), dropping the pending
/// version that never became current (`drop_pending`) or keeping it.
async fn finish_failed(
    state: &AppState,
    item: &Item,
    s: &RotatedSettings,
    msg: &str,
    drop_pending: Option<i32>,
    template: &AuditRecord,
) {
    let mut rec = record(template, "rotate", Some(msg));
    // A kept pending version is retried (for every item); a dropped one
    // only by the schedule.
    let next = if drop_pending.is_none() || s.auto_rotate {
        now_ms() + RETRY_MS
    } else {
        0
    };
    match state
        .store
        .set_producer_status(
            item.id,
            &state.request_prefix,
            msg,
            next,
            drop_pending,
            Audit::new(&mut rec, &*state.keys.audit),
        )
        .await
    {
        Ok(()) => state.audited(rec.seq),
        Err(e) => tracing::error!(item = %item.name, error = %e, "cannot record a failed rotation"),
    }
}

/// How an interrupted rotation ended.
enum Recovered {
    /// The new password logs in: it is current now.
    Promoted,
    /// The old one still logs in: the new one was dropped.
    RolledBack,
}

/// Finish an interrupted rotation: keep whichever password logs in; when
/// neither does, keep both, report it and try again later.
async fn recover(
    state: &AppState,
    item: &Item,
    s: &RotatedSettings,
    current: &Creds,
    v: i32,
    template: &AuditRecord,
) -> Result<Recovered, ApiError> {
    let pending = Creds::parse(&open_item_value(state, &item.name, Some(v)).await?)?;
    let (_, checker) = specs(state, s, current).await?;
    if state
        .db
        .login_check(&checker, &pending.username, &pending.password)
        .await
        .is_ok()
    {
        promote(state, item, s, v, template).await?;
        return Ok(Recovered::Promoted);
    }
    match state
        .db
        .login_check(&checker, &current.username, &current.password)
        .await
    {
        Ok(()) => {
            let msg = "RotationFailed: the new password did not take (the database kept the old one, which stays current)";
            finish_failed(state, item, s, msg, Some(v), template).await;
            Ok(Recovered::RolledBack)
        }
        Err(e) => {
            let msg = format!(
                "RotationFailed: neither the current nor the pending password logs in ({e}); both are kept and retried"
            );
            finish_failed(state, item, s, &msg, None, template).await;
            Err(ApiError::Upstream(format!(
                "rotation of {:?}: {}",
                item.name,
                &msg["RotationFailed: ".len()..]
            )))
        }
    }
}

/// The scheduler: every node looks for due (or interrupted) rotations.
pub(crate) async fn scheduler(state: Arc<AppState>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let due = match state.store.due_rotations(now_ms(), 20).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "rotation scheduler: cannot list due rotations");
                continue;
            }
        };
        for name in due {
            let item = match rotated::find_rotated(&state, &name).await {
                Ok(i) => i,
                Err(_) => continue,
            };
            let template = system_record("rotate-scheduled", &name);
            match rotate(&state, &item, template).await {
                Ok(()) => tracing::info!(item = %name, "rotated"),
                // Another node has it.
                Err(ApiError::Conflict(_)) => {}
                Err(e) => tracing::warn!(item = %name, error = %e, "scheduled rotation failed"),
            }
        }
    }
}
