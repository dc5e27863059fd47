use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use strata::SyncMode;

use super::settings::{self, from_toml, parse_bytes, parse_listen, parse_sync, Settings};
use super::Args;

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    args: Args,
}

fn flags(argv: &[&str]) -> Settings {
    let w = Wrap::try_parse_from(std::iter::once("serve").chain(argv.iter().copied())).unwrap();
    *w.args.settings
}

#[test]
fn sync_modes() {
    assert_eq!(parse_sync("always"), Ok(SyncMode::Always));
    assert_eq!(parse_sync("never"), Ok(SyncMode::Never));
    assert_eq!(parse_sync("250ms"), Ok(SyncMode::Interval(Duration::from_millis(250))));
    assert!(parse_sync("sometimes").unwrap_err().contains("always, never or a duration"));
    assert!(parse_sync("0").is_err());
}

#[test]
fn listen_forms() {
    let a = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(parse_listen("127.0.0.1:9464"), Ok(a("127.0.0.1:9464")));
    assert_eq!(parse_listen("localhost:9464"), Ok(a("127.0.0.1:9464")));
    assert_eq!(parse_listen("LOCALHOST:1"), Ok(a("127.0.0.1:1")));
    assert_eq!(parse_listen(":9464"), Ok(a("0.0.0.0:9464")));
    assert_eq!(parse_listen("[::1]:9464"), Ok(a("[::1]:9464")));
    assert_eq!(parse_listen("0.0.0.0:0"), Ok(a("0.0.0.0:0")));
    assert!(parse_listen("9464").unwrap_err().contains("no port"));
    assert!(parse_listen("localhost:http").unwrap_err().contains("not a port number"));
    assert!(parse_listen(":70000").unwrap_err().contains("not a port number"));
}

#[test]
fn sizes() {
    assert_eq!(parse_bytes("65536"), Ok(65536));
    assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
    assert_eq!(parse_bytes("16M"), Ok(16 << 20));
    assert_eq!(parse_bytes("1_000"), Ok(1000));
    assert!(parse_bytes("0").is_err());
    assert!(parse_bytes("16MB").unwrap_err().contains("16MiB"));
    assert!(parse_bytes("-1").is_err());
}

#[test]
fn a_file_sets_every_kind_of_value() {
    let s = from_toml(
        r#"
        # comments are fine
        data = "/var/lib/strata"
        listen = ":9464"
        insecure = true
        ingest_nice = 0
        sync = "always"
        retention = "forever"
        log_level = "debug"
        log_format = "json"
        max_body_bytes = "1MiB"
        max_connections = 256
        header_read_timeout = "2s"
        "#,
    )
    .unwrap();
    assert_eq!(s.data.as_deref(), Some(std::path::Path::new("/var/lib/strata")));
    assert_eq!(s.listen, Some("0.0.0.0:9464".parse().unwrap()));
    assert_eq!(s.insecure, Some(true));
    assert_eq!(s.ingest_nice, Some(0));
    assert_eq!(s.sync, Some(SyncMode::Always));
    let forever = strata::RetentionPolicy::new(strata::TierDurations::forever()).unwrap();
    assert_eq!(s.retention.map(|p| p.summary()), Some(forever.summary()));
    assert_eq!(s.log_level, Some(log::LevelFilter::Debug));
    assert_eq!(s.log_format, Some(super::logger::LogFormat::Json));
    let limits = s.limits.resolve();
    assert_eq!(limits.max_body_bytes, 1 << 20);
    assert_eq!(limits.max_connections, 256);
    assert_eq!(limits.header_read_timeout, Duration::from_secs(2));
    // Untouched limits keep the library's defaults.
    assert_eq!(limits.max_streams, strata::server::Limits::default().max_streams);
}

#[test]
fn file_errors_name_the_key() {
    let e = from_toml("max_conections = 5").unwrap_err();
    assert!(e.contains("`max_conections`") && e.contains("unknown key") && e.contains("max_connections"), "{e}");
    let e = from_toml("[limits]\nmax_connections = 5").unwrap_err();
    assert!(e.contains("`limits`") && e.contains("table"), "{e}");
    let e = from_toml("insecure = 1").unwrap_err();
    assert!(e.contains("`insecure`") && e.contains("true or false"), "{e}");
    let e = from_toml("max_connections = 0").unwrap_err();
    assert!(e.contains("`max_connections`") && e.contains("positive"), "{e}");
    let e = from_toml("listen = 9464").unwrap_err();
    assert!(e.contains("`listen`") && e.contains("string"), "{e}");
    let e = from_toml("retention = \"raw=2x\"").unwrap_err();
    assert!(e.contains("`retention`"), "{e}");
    let e = from_toml("sync = ").unwrap_err();
    assert!(e.contains("line 1"), "{e}");
    // Every known key is accepted by the parser (and so documented in one list).
    for key in settings::KEYS {
        let e = from_toml(&format!("{key} = false")).unwrap_err_or_ok(key);
        assert!(!e.contains("unknown key"), "{key}: {e}");
    }
}

trait ErrText {
    fn unwrap_err_or_ok(self, key: &str) -> String;
}

impl ErrText for Result<Settings, String> {
    /// The error, or "" for a key that takes booleans.
    fn unwrap_err_or_ok(self, key: &str) -> String {
        match self {
            Ok(_) => {
                assert!(matches!(key, "insecure" | "in_memory"), "{key}");
                String::new()
            }
            Err(e) => e,
        }
    }
}

#[test]
fn environment_variables_use_the_file_keys() {
    let env = |name: &str| match name {
        "STRATA_DATA" => Some("/srv/strata".into()),
        "STRATA_MAX_CONNECTIONS" => Some("12".into()),
        "STRATA_INSECURE" => Some("false".into()),
        "STRATA_RETENTION" => Some("raw=2d".into()),
        _ => None,
    };
    let s = settings::from_env(env).unwrap();
    assert_eq!(s.data.as_deref(), Some(std::path::Path::new("/srv/strata")));
    assert_eq!(s.limits.max_connections, Some(12));
    assert_eq!(s.insecure, Some(false));
    assert!(s.retention.is_some());
    assert!(s.listen.is_none());
    let e = settings::from_env(|n| (n == "STRATA_MAX_CONNECTIONS").then(|| "abc".into())).unwrap_err();
    assert!(e.contains("environment variable STRATA_MAX_CONNECTIONS") && e.contains("positive"), "{e}");
    let e = settings::from_env(|n| (n == "STRATA_SYNC").then(|| "sometimes".into())).unwrap_err();
    assert!(e.contains("STRATA_SYNC") && e.contains("always, never"), "{e}");
    // The query cache's budget: a size, or 0 for off.
    let s = settings::from_env(|n| (n == "STRATA_QUERY_CACHE_BYTES").then(|| "8MiB".into())).unwrap();
    assert_eq!(s.query_cache_bytes, Some(8 << 20));
    assert_eq!(from_toml("query_cache_bytes = 0").unwrap().query_cache_bytes, Some(0));
    let e = settings::from_env(|n| (n == "STRATA_QUERY_CACHE_BYTES").then(|| "lots".into())).unwrap_err();
    assert!(e.contains("STRATA_QUERY_CACHE_BYTES") && e.contains("0 to turn the cache off"), "{e}");
}

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let file = from_toml("data = \"from-file\"\nmax_streams = 3\nmax_connections = 7\nlog_level = \"warn\"").unwrap();
    let top = flags(&["--data", "from-flag", "--max-connections", "9", "--insecure"]);
    let s = top.or(file);
    assert_eq!(s.data.as_deref(), Some(std::path::Path::new("from-flag")));
    assert_eq!(s.limits.max_connections, Some(9));
    assert_eq!(s.limits.max_streams, Some(3));
    assert_eq!(s.log_level, Some(log::LevelFilter::Warn));
    assert_eq!(s.insecure, Some(true));
    // `--insecure=false` overrides a file's `insecure = true`.
    let s = flags(&["--insecure=false"]).or(from_toml("insecure = true").unwrap());
    assert_eq!(s.insecure, Some(false));
    // Nothing said anywhere: every setting is left to the defaults.
    let s = flags(&[]).or(Settings::default());
    assert!(s.data.is_none() && s.listen.is_none() && s.limits.max_connections.is_none());
}

#[test]
fn forward_targets_from_flags_and_tables() {
    let s = from_toml(
        "forward_to = \"http://a:1/w http://b:2/w\"\nforward_shards = 2\n\
         [[forward]]\nurl = \"http://c:3/api/v1/push\"\nname = \"mimir\"\nheaders = [\"X-Scope-OrgID: t1\"]\n\
         selector = '{job=\"node\"}'\nmax_backlog_bytes = \"4MiB\"\n",
    )
    .unwrap();
    let all = s.forward.resolve().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!((all[0].url.as_str(), all[0].shards), ("http://a:1/w", 2));
    assert_eq!(all[2].headers, vec![("X-Scope-OrgID".to_string(), "t1".to_string())]);
    assert_eq!((all[2].id().unwrap().as_str(), all[2].max_backlog_bytes, all[2].selector.len()), ("mimir", 4 << 20, 1));
    let e = from_toml("[[forward]]\nurl = \"http://c/w\"\nshard = 2\n").unwrap_err();
    assert!(e.contains("[[forward]]") && e.contains("`shard`"), "{e}");
    let e = from_toml("forward_to = \"http://a/w http://a/w\"").unwrap().forward.resolve().unwrap_err();
    assert!(e.contains("share the name"), "{e}");
    let e = from_toml("forward_to = \"https://a/w\"").unwrap().forward.resolve().unwrap_err();
    assert!(e.contains("plain HTTP"), "{e}");
}
