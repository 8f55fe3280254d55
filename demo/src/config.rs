//! Demo settings, parsed from the `hopscope demo` command line.

use std::time::Duration;

/// `hopscope demo` options (shown under their own heading in `hopscope demo --help`,
/// apart from the server's options).
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Demo workload")]
pub struct DemoArgs {
    /// Requests per second the load generator sends to the gateway.
    #[arg(long, default_value_t = 5.0, env = "HOPSCOPE_DEMO_RATE")]
    pub rate: f64,

    /// Stop the workload after this many seconds (the server keeps running).
    #[arg(long, env = "HOPSCOPE_DEMO_DURATION")]
    pub duration_secs: Option<u64>,

    /// Simulate every middleware hop even when the real service is reachable.
    #[arg(long)]
    pub simulate: bool,

    /// Fault: redis-shard-2 answers 60–150 ms slower than its siblings.
    #[arg(long)]
    pub fault_slow_redis_shard: bool,

    /// Fault: a batch job holds row locks on hot accounts, so payment UPDATEs wait.
    #[arg(long)]
    pub fault_db_lock_wait: bool,

    /// Fault: one payment call in five outlasts account's 300 ms client timeout; payment
    /// still completes it (the caller sees a timeout, the callee a success).
    #[arg(long)]
    pub fault_timeout: bool,

    /// Fault: the ledger consumer is slower than the publish rate, so the queue backs up.
    #[arg(long)]
    pub fault_queue_backlog: bool,

    /// Fault: a noisy neighbour steals CPU on host acct-gcp-02 (the second account
    /// instance): every request it serves spends 40–120 ms more in its own code.
    #[arg(long)]
    pub fault_noisy_host: bool,

    /// Turn on every fault.
    #[arg(long)]
    pub all_faults: bool,

    /// Redis URL (databases 1–3 play the three shards).
    #[arg(long, default_value = "redis://127.0.0.1:6379", env = "HOPSCOPE_DEMO_REDIS_URL")]
    pub redis_url: String,

    /// RabbitMQ URL.
    #[arg(
        long,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        env = "HOPSCOPE_DEMO_AMQP_URL"
    )]
    pub amqp_url: String,

    /// RabbitMQ queue the payment service publishes to and the ledger consumes.
    #[arg(long, default_value = "hopscope-demo-payments", env = "HOPSCOPE_DEMO_QUEUE")]
    pub queue: String,

    /// PostgreSQL URL (accounts and ledger).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/test",
        env = "HOPSCOPE_DEMO_POSTGRES_URL"
    )]
    pub postgres_url: String,

    /// MariaDB URL (payments).
    #[arg(
        long,
        default_value = "mysql://root@127.0.0.1:3306/test",
        env = "HOPSCOPE_DEMO_MARIADB_URL"
    )]
    pub mariadb_url: String,
}

/// Which faults are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// redis-shard-2 is slow.
    pub slow_redis_shard: bool,
    /// Payment UPDATEs wait on row locks.
    pub db_lock_wait: bool,
    /// Some payment calls time out at the gateway although payment completes them.
    pub timeout: bool,
    /// The ledger consumer falls behind.
    pub queue_backlog: bool,
    /// Host acct-gcp-02 is noisy (CPU stolen by a neighbour).
    pub noisy_host: bool,
}

impl Faults {
    /// The enabled faults by their flag names (`slow-redis-shard`, ...), in flag order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.slow_redis_shard, "slow-redis-shard"),
            (self.db_lock_wait, "db-lock-wait"),
            (self.timeout, "timeout"),
            (self.queue_backlog, "queue-backlog"),
            (self.noisy_host, "noisy-host"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// `slow-redis-shard, timeout`, or `none`.
impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.names();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(", "))
        }
    }
}

/// Everything [`crate::run`] needs.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// OTLP/gRPC endpoint the demo services export to.
    pub otlp_endpoint: String,
    /// Load generator requests per second.
    pub rate: f64,
    /// Stop after this long (`None`: until shutdown).
    pub duration: Option<Duration>,
    /// Simulate every hop.
    pub simulate: bool,
    /// Faults.
    pub faults: Faults,
    /// Redis URL.
    pub redis_url: String,
    /// RabbitMQ URL.
    pub amqp_url: String,
    /// Queue name.
    pub queue: String,
    /// PostgreSQL URL.
    pub postgres_url: String,
    /// MariaDB URL.
    pub mariadb_url: String,
}

impl DemoArgs {
    /// The demo configuration, exporting to `otlp_endpoint`.
    pub fn into_config(self, otlp_endpoint: String) -> DemoConfig {
        let all = self.all_faults;
        DemoConfig {
            otlp_endpoint,
            rate: self.rate,
            duration: self.duration_secs.map(Duration::from_secs),
            simulate: self.simulate,
            faults: Faults {
                slow_redis_shard: all || self.fault_slow_redis_shard,
                db_lock_wait: all || self.fault_db_lock_wait,
                timeout: all || self.fault_timeout,
                queue_backlog: all || self.fault_queue_backlog,
                noisy_host: all || self.fault_noisy_host,
            },
            redis_url: self.redis_url,
            amqp_url: self.amqp_url,
            queue: self.queue,
            postgres_url: self.postgres_url,
            mariadb_url: self.mariadb_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_log_as_words() {
        assert_eq!(Faults::default().to_string(), "none");
        let some = Faults {
            slow_redis_shard: true,
            noisy_host: true,
            ..Faults::default()
        };
        assert_eq!(some.to_string(), "slow-redis-shard, noisy-host");
    }
}
