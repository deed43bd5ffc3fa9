//! Rate limits on credential endpoints, counted in the database so every node shares them.
//! Identifiers (emails) are keyed by their MAC, never stored in clear.

use time::Duration;

use crate::config::Limit;
use crate::error::{ServiceError, ServiceResult};
use crate::state::App;

#[tracing::instrument(skip_all, fields(limit = %name))]
pub async fn check(app: &App, name: &str, subject: &str, limit: Limit) -> ServiceResult<()> {
    let key = format!("{name}:{}", app.keys.mac_b64("rate-limit", subject.as_bytes()));
    let count = app.store.hit_rate_limit(&key, app.now(), Duration::seconds(limit.window_secs)).await?;
    if count > limit.max {
        metrics::counter!("mimoto_rate_limited_total", "limit" => name.to_string()).increment(1);
        return Err(ServiceError::RateLimited { retry_after: limit.window_secs });
    }
    Ok(())
}
