//! The limits' counters in Redis, shared by every replica given the same store. One decision is
//! one round trip: a Lua script checks every budget of the call and, only if all have room,
//! counts it in all of them, atomically, on Redis's own clock (so replicas' clocks do not
//! matter). A concurrent place is a member of a sorted set scored by when it lapses, so a
//! replica that dies holding places gives them back after [`LEASE`].

use super::{Decided, Denied, Permit, StoreError, holds_places};
use crate::core::limits::{Budget, Check};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// How long a concurrent place is held if it is never given back (the replica holding it
/// died): the gateway's longest request.
pub const LEASE: Duration = Duration::from_secs(600);
/// What every key starts with.
const PREFIX: &str = "mcplock:limits:v1:";

/// ARGV: (kind, a, b) per key, then the permit id. `calls`: a = interval, b = burst (µs);
/// `concurrent`: a = most, b = lease (µs); `daily`: a = most. Returns {0, 0} when admitted,
/// else {index of the key without room (1-based), µs until it may have room, or -1}.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local day_us = 86400000000
local today = math.floor(now / day_us)
local id = ARGV[#ARGV]
local tats = {}
for i, key in ipairs(KEYS) do
  local kind, a, b = ARGV[3 * i - 2], tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  if kind == 'calls' then
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat < now then tat = now end
    local ahead = tat + a - now
    if ahead > b then return {i, ahead - b} end
    tats[i] = tat + a
  elseif kind == 'concurrent' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) >= a then return {i, -1} end
  else
    local used = 0
    if tonumber(redis.call('HGET', key, 'day') or '-1') == today then
      used = tonumber(redis.call('HGET', key, 'n') or '0')
    end
    if used >= a then return {i, (today + 1) * day_us - now} end
  end
end
for i, key in ipairs(KEYS) do
  local kind, b = ARGV[3 * i - 2], tonumber(ARGV[3 * i])
  if kind == 'calls' then
    local ttl = math.ceil((tats[i] - now) / 1000) + 1
    redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', ttl)
  elseif kind == 'concurrent' then
    redis.call('ZADD', key, string.format('%.0f', now + b), id)
    redis.call('PEXPIRE', key, math.ceil(b / 1000) + 1000)
  else
    if tonumber(redis.call('HGET', key, 'day') or '-1') ~= today then
      redis.call('HSET', key, 'day', today, 'n', 0)
    end
    redis.call('HINCRBY', key, 'n', 1)
    redis.call('PEXPIRE', key, 2 * 86400000)
  end
end
return {0, 0}
";

pub struct RedisStore {
    name: String,
    connection: ConnectionManager,
    script: redis::Script,
    timeout: Duration,
}

impl RedisStore {
    /// A store at `url` (`redis://HOST:PORT[/DB]` or `rediss://` for TLS; a user name may be in
    /// it, a password may not); connected on first use, each request bounded by `timeout`.
    pub fn open(
        url: &str,
        (password, roots): (Option<&str>, Option<Vec<u8>>),
        timeout: Duration,
    ) -> Result<RedisStore, StoreError> {
        let bad = |why: String| StoreError(format!("--state {url}: {why}"));
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(bad(
                "expected redis://HOST:PORT or rediss://HOST:PORT (TLS)".into(),
            ));
        }
        let info =
            redis::IntoConnectionInfo::into_connection_info(url).map_err(|e| bad(e.to_string()))?;
        if info.redis_settings().password().is_some() {
            return Err(bad(
                "a password must not be on the command line; give it in the environment variable MCPLOCK_STATE_PASSWORD".into(),
            ));
        }
        let info = match password {
            Some(password) => {
                let settings = info.redis_settings().clone().set_password(password);
                info.set_redis_settings(settings)
            }
            None => info,
        };
        let client = match roots {
            Some(_) if !url.starts_with("rediss://") => {
                return Err(bad("--state-cacert is for a rediss:// (TLS) store".into()));
            }
            Some(root_cert) => {
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(info, certificates)
            }
            None => redis::Client::open(info),
        }
        .map_err(|e| bad(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| bad(e.to_string()))?;
        Ok(RedisStore {
            name: url.to_string(),
            connection,
            script: redis::Script::new(SCRIPT),
            timeout,
        })
    }

    pub fn name(&self) -> String {
        self.name.clone()
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StoreError(e.to_string())),
            Err(_) => Err(StoreError(format!("no answer within {:?}", self.timeout))),
        }
    }

    /// One round trip: admitted in every budget, or the first without room. `Err`: the store
    /// could not decide.
    pub async fn admit(&self, checks: Vec<Check>) -> Result<Decided, String> {
        let id = permit_id()?;
        let mut invocation = self.script.prepare_invoke();
        for check in &checks {
            invocation.key(format!("{PREFIX}{}", check.key));
            let (a, b) = match check.budget {
                Budget::Calls(rate) => (rate.interval_us(), rate.burst_us()),
                Budget::Concurrent(most) => (most, LEASE.as_micros() as u64),
                Budget::Daily(most) => (most, 0),
            };
            invocation.arg(check.budget.kind()).arg(a).arg(b);
        }
        invocation.arg(&id);
        let mut connection = self.connection.clone();
        let asked = invocation.invoke_async::<(i64, i64)>(&mut connection);
        let (index, wait) = match tokio::time::timeout(self.timeout, asked).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {:?}", self.timeout)),
        };
        if index == 0 {
            if !holds_places(&checks) {
                return Ok(Ok(None));
            }
            let keys = (checks.iter())
                .filter(|c| matches!(c.budget, Budget::Concurrent(_)))
                .map(|c| format!("{PREFIX}{}", c.key))
                .collect();
            let permit = RedisPermit {
                connection: self.connection.clone(),
                keys,
                id,
            };
            return Ok(Ok(Some(Box::new(permit) as Permit)));
        }
        let index =
            usize::try_from(index - 1).map_err(|_| format!("the store answered {index}"))?;
        let retry_us = u64::try_from(wait).ok();
        Ok(Err(Denied::of(checks, index, retry_us)))
    }
}

/// 128 random bits: a concurrent place's name in the store.
fn permit_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a permit: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Concurrent places in the store, given back when dropped (or lapsed after [`LEASE`] if the
/// store cannot be told).
struct RedisPermit {
    connection: ConnectionManager,
    keys: Vec<String>,
    id: String,
}

impl Drop for RedisPermit {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (mut connection, keys, id) = (
            self.connection.clone(),
            std::mem::take(&mut self.keys),
            std::mem::take(&mut self.id),
        );
        runtime.spawn(async move {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("ZREM").arg(key).arg(&id).ignore();
            }
            let _ = tokio::time::timeout(
                super::STORE_TIMEOUT,
                pipe.query_async::<()>(&mut connection),
            )
            .await;
        });
    }
}
