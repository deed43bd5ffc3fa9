//! Rate limits on credential endpoints, counted in the database so every node shares them.
//! Identifiers (emails) are keyed by their MAC, never stored in clear.

use time::Duration;

use crate::config::Limit;
use crate::error::{ServiceError, ServiceResult};
use crate::state::App;

/// The bucket a client address is counted in: an IPv4 address itself, an IPv6 address's /64
/// (one subscriber usually holds a whole /64, so counting single IPv6 addresses would let one
/// client rotate through 2^64 of them).
pub fn client_bucket(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(std::net::IpAddr::V6(v6)) => match ipnet::Ipv6Net::new(v6, 64) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => v6.to_string(),
        },
        Ok(v4) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

/// [`check`] for a client address, counted in its [`client_bucket`].
pub async fn check_ip(app: &App, name: &str, ip: &str, limit: Limit) -> ServiceResult<()> {
    check(app, name, &client_bucket(ip), limit).await
}

/// The counter keys of `subject` under every configured MAC key, the active one's first: a hit
/// is counted under the active key, a limit compared with the sum, so a MAC key rotation (or a
/// rolling restart with two active keys) never hands out a fresh budget.
fn keys(app: &App, name: &str, subject: &str) -> Vec<String> {
    app.keys.macs_b64("rate-limit", subject.as_bytes()).into_iter().map(|mac| format!("{name}:{mac}")).collect()
}

/// The hits of the counters `keys` in the window, added up.
async fn hits(app: &App, keys: &[String], window: Duration) -> ServiceResult<i64> {
    let mut sum = 0;
    for key in keys {
        sum += app.store.rate_limit_count(key, app.now(), window).await?;
    }
    Ok(sum)
}

#[tracing::instrument(skip_all, fields(limit = %name))]
pub async fn check(app: &App, name: &str, subject: &str, limit: Limit) -> ServiceResult<()> {
    hit(app, name, subject, limit).await.map(|_| ())
}

/// A hit that [`check`] counted and that may be taken back ([`Counted::refund`]).
struct Counted {
    key: String,
    window: Duration,
}

impl Counted {
    async fn refund(&self, app: &App) -> ServiceResult<()> {
        Ok(app.store.refund_rate_limit(&self.key, app.now(), self.window).await?)
    }
}

/// [`check`], returning the counter the hit went to.
async fn hit(app: &App, name: &str, subject: &str, limit: Limit) -> ServiceResult<Option<Counted>> {
    let keys = keys(app, name, subject);
    let Some((active, older)) = keys.split_first() else { return Ok(None) };
    let window = Duration::seconds(limit.window_secs);
    let count = app.store.hit_rate_limit(active, app.now(), window).await? + hits(app, older, window).await?;
    if count > limit.max {
        metrics::counter!("mimoto_rate_limited_total", "limit" => name.to_string()).increment(1);
        return Err(ServiceError::RateLimited { retry_after: limit.window_secs });
    }
    Ok(Some(Counted { key: active.clone(), window }))
}

/// What is left of `subject`'s budget `limit` under `name` (as [`check`] counts it), without a hit.
pub async fn remaining(app: &App, name: &str, subject: &str, limit: Limit) -> ServiceResult<i64> {
    let used = hits(app, &keys(app, name, subject), Duration::seconds(limit.window_secs)).await?;
    Ok((limit.max - used).max(0))
}

/// Failed logins an account may have before each further attempt waits (see [`LoginGuard`]).
pub const FREE_LOGIN_FAILURES: i64 = 5;
/// The longest wait between attempts on an account with many recent failures.
pub const MAX_LOGIN_DELAY_SECS: i64 = 60;

/// The seconds an account with `failures` recent failed logins waits between attempts:
/// none up to [`FREE_LOGIN_FAILURES`], then 1, 2, 4 … up to [`MAX_LOGIN_DELAY_SECS`].
pub fn login_delay_secs(failures: i64) -> i64 {
    match failures - FREE_LOGIN_FAILURES {
        n if n < 0 => 0,
        n if n >= 6 => MAX_LOGIN_DELAY_SECS,
        n => (1_i64 << n).min(MAX_LOGIN_DELAY_SECS),
    }
}

/// The budgets of one login attempt on an account (members and operators alike), so that a
/// stranger's wrong passwords never lock the real holder out:
///
/// - **per client** (`limits.login_per_ip`, address or IPv6 /64): attempts on any account;
/// - **per account and client** (`limits.login_per_account_client`): a client that keeps
///   guessing one account is refused for the window — only that client;
/// - **a growing delay per account**: after [`FREE_LOGIN_FAILURES`] failures in a day, each
///   attempt from anywhere must wait [`login_delay_secs`] after the previous one (a 429 with
///   that `retry_after`), which slows a guesser rotating clients without locking anyone out
///   for longer than a minute;
/// - **a ceiling per account** (`limits.login_failures_per_account`, ≤ 100 a day as NIST SP
///   800-63B §5.2.2 asks): then nobody can log in to the account until the window ends or
///   the member resets the password (which forgets the failures).
///
/// Everything is counted before the password is checked (concurrent guesses cannot overdraw
/// a budget), and only failures stay counted: a success takes its hits on the client's two
/// budgets back and forgets the account's failures, so members who log in often (a family or
/// an office behind one address) are never refused for succeeding.
pub struct LoginGuard {
    /// The account's failure counters under every configured MAC key, the active one first.
    failures_keys: Vec<String>,
    /// The client's hits counted for this attempt, refunded on success.
    counted: Vec<Counted>,
}

impl LoginGuard {
    /// Checks the budgets of an attempt on `account` (a normalized identifier) from `ip`.
    pub async fn before(app: &App, scope: &str, account: &str, ip: &str) -> ServiceResult<LoginGuard> {
        let mut guard = LoginGuard::of(app, scope, account);
        let checked = guard.check(app, scope, account, ip).await;
        if let Err(refused) = checked {
            // Refused before any password was checked: nothing failed, so nothing stays counted.
            guard.refund(app).await?;
            return Err(refused);
        }
        Ok(guard)
    }

    async fn check(&mut self, app: &App, scope: &str, account: &str, ip: &str) -> ServiceResult<()> {
        let limits = &app.config.limits;
        let client = client_bucket(ip);
        self.counted.extend(hit(app, &format!("{scope}:ip"), &client, limits.login_per_ip).await?);
        let pair = format!("{account}\n{client}");
        self.counted
            .extend(hit(app, &format!("{scope}:account-client"), &pair, limits.login_per_account_client).await?);
        let ceiling = limits.login_failures_per_account;
        let window = Duration::seconds(ceiling.window_secs);
        let failures = hits(app, &self.failures_keys, window).await?;
        if failures >= ceiling.max {
            metrics::counter!("mimoto_rate_limited_total", "limit" => format!("{scope}:account")).increment(1);
            return Err(ServiceError::RateLimited { retry_after: ceiling.window_secs });
        }
        let delay = login_delay_secs(failures);
        if delay > 0 {
            check(app, &format!("{scope}:account-delay"), account, Limit::new(1, delay)).await?;
        }
        Ok(())
    }

    /// Takes back the client's hits counted for this attempt.
    async fn refund(&self, app: &App) -> ServiceResult<()> {
        for hit in &self.counted {
            hit.refund(app).await?;
        }
        Ok(())
    }

    fn of(app: &App, scope: &str, account: &str) -> LoginGuard {
        LoginGuard { failures_keys: keys(app, &format!("{scope}:account-failures"), account), counted: Vec::new() }
    }

    /// Counts a failed attempt toward the delay and the ceiling.
    pub async fn failed(&self, app: &App) -> ServiceResult<()> {
        let window = Duration::seconds(app.config.limits.login_failures_per_account.window_secs);
        if let Some(active) = self.failures_keys.first() {
            app.store.hit_rate_limit(active, app.now(), window).await?;
        }
        Ok(())
    }

    /// A correct password: the client's hits of this attempt are taken back and the account's
    /// failures forgotten.
    pub async fn succeeded(&self, app: &App) -> ServiceResult<()> {
        self.refund(app).await?;
        self.forget_failures(app).await
    }

    async fn forget_failures(&self, app: &App) -> ServiceResult<()> {
        for key in &self.failures_keys {
            app.store.clear_rate_limit(key).await?;
        }
        Ok(())
    }

    /// The recent failed logins of `account` counted toward the ceiling (a look only: nothing
    /// is counted), for the console's member page.
    pub async fn failures(app: &App, scope: &str, account: &str) -> ServiceResult<i64> {
        let window = Duration::seconds(app.config.limits.login_failures_per_account.window_secs);
        hits(app, &LoginGuard::of(app, scope, account).failures_keys, window).await
    }

    /// Forgets the failures of `account` without an attempt (after a password reset).
    pub async fn forget(app: &App, scope: &str, account: &str) -> ServiceResult<()> {
        LoginGuard::of(app, scope, account).forget_failures(app).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_login_delay_grows_and_stops_at_a_minute() {
        let delays: Vec<i64> = (0..14).map(super::login_delay_secs).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(super::login_delay_secs(i64::MAX), 60);
    }

    use super::client_bucket;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(client_bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(client_bucket("2001:db8:1:2:bbbb::9"), client_bucket("2001:db8:1:2::1"));
        assert_ne!(client_bucket("2001:db8:1:3::1"), client_bucket("2001:db8:1:2::1"));
        assert_eq!(client_bucket("198.51.100.7"), "198.51.100.7");
        assert_eq!(client_bucket("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(client_bucket("unknown"), "unknown");
    }
}
