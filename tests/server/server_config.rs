//! `strata serve` as operators run it: settings from a TOML file, `STRATA_*` variables
//! and flags (flag > environment > file), the log on stderr, `--listen` forms, a taken
//! port, and the process figures of `/metrics`. Runs the real binary where it matters.
#![cfg(feature = "server")]

use crate::support::served::{command, spawn};
use crate::support::server_util;
use std::net::SocketAddr;

fn write(addr: SocketAddr, bytes: usize) -> u16 {
    // No timestamp: the server's clock, inside any retention.
    let mut body = format!("m v=1\n{}", "#".repeat(bytes.saturating_sub(6)));
    body.truncate(bytes);
    server_util::request(addr, "POST", "/write", &[], body.as_bytes()).status
}

#[test]
fn a_taken_port_fails_before_the_data_directory_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = crate::support::output(&mut command(
        tmp.path(),
        &["--data", "fresh", "--listen", &format!("127.0.0.1:{port}")],
        &[],
    ))
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("binding 127.0.0.1:{port}")), "{err}");
    assert!(!tmp.path().join("fresh").exists(), "the data directory was created");
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("strata.toml"),
        "# A deployment's settings.\ndata = \"from-file\"\nlisten = \"localhost:0\"\nmax_body_bytes = 64\n\
         log_format = \"json\"\nlog_level = \"debug\"\nsync = \"never\"\n",
    )
    .unwrap();
    let cfg = ["--config", "strata.toml"];

    // File only (the data directory from the environment): a 100-byte body is over the file's cap.
    let mut s = spawn(tmp.path(), &cfg, &[("STRATA_DATA", "from-env")]);
    assert_eq!(write(s.addr(), 100), 413);
    let (status, lines) = s.terminate();
    assert!(status.success(), "{lines:#?}");
    assert!(tmp.path().join("from-env").is_dir() && !tmp.path().join("from-file").exists());
    // JSON lines, one object each, with the refused request at debug level.
    let logs: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
    for v in &logs {
        assert!(v["ts"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')), "{v}");
        assert!(v["level"].is_string() && v["target"].is_string() && v["message"].is_string(), "{v}");
    }
    let said = |level: &str, text: &str| {
        logs.iter().any(|v| v["level"] == level && v["message"].as_str().unwrap().contains(text))
    };
    assert!(said("debug", "refused POST /write: 413"), "{lines:#?}");
    assert!(said("debug", "max_body_bytes"), "{lines:#?}");
    assert!(said("info", "settings from strata.toml"), "{lines:#?}");
    assert!(said("debug", "max_connections: 1024"), "{lines:#?}");
    assert!(said("info", "SIGTERM received"), "{lines:#?}");
    assert!(said("info", "database closed"), "{lines:#?}");

    // The environment over the file: the same body fits under 1 KiB.
    let env = [("STRATA_DATA", "from-env"), ("STRATA_MAX_BODY_BYTES", "1KiB"), ("STRATA_LOG_FORMAT", "text")];
    let mut s = spawn(tmp.path(), &cfg, &env);
    assert_eq!(write(s.addr(), 100), 204);
    let (status, lines) = s.terminate();
    assert!(status.success(), "{lines:#?}");
    assert!(lines.iter().all(|l| serde_json::from_str::<serde_json::Value>(l).is_err()), "{lines:#?}");

    // Flags over both.
    let args = [&cfg[..], &["--data", "from-flag", "--max-body-bytes", "80"]].concat();
    let mut s = spawn(tmp.path(), &args, &env);
    assert_eq!(write(s.addr(), 100), 413);
    assert_eq!(write(s.addr(), 60), 204);
    let (status, lines) = s.terminate();
    assert!(status.success(), "{lines:#?}");
    assert!(tmp.path().join("from-flag").is_dir());
}

#[test]
fn bad_settings_are_refused_by_name_before_anything_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("typo.toml"), "max_conections = 5\n").unwrap();
    // (arguments, environment, what the error says)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (&["--config", "typo.toml"], &[], "key `max_conections`: unknown key"),
        (&["--config", "missing.toml"], &[], "reading the config file missing.toml"),
        (&[], &[("STRATA_SYNC", "sometimes")], "environment variable STRATA_SYNC"),
        (&[], &[("STRATA_RETENTION", "raw=often")], "environment variable STRATA_RETENTION"),
    ];
    for (args, env, want) in cases {
        let out = crate::support::output(&mut command(
            tmp.path(),
            &[args, &["--data", "d", "--listen", "127.0.0.1:0"]].concat(),
            env,
        ))
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} {env:?}: {err}");
        assert!(err.contains(want), "{args:?} {env:?}: {err}");
        assert!(!tmp.path().join("d").exists());
    }
}

#[test]
fn the_start_is_logged_with_version_directory_address_and_retention() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), "retention = \"raw=1d\"\n").unwrap();
    // STRATA_RETENTION beats the file's retention.
    let env = [("STRATA_RETENTION", "forever"), ("STRATA_SYNC", "never")];
    let mut s = spawn(tmp.path(), &["--config", "s.toml", "--data", "db", "--listen", "localhost:0"], &env);
    let addr = s.addr();
    assert!(addr.ip().is_loopback());
    let (status, lines) = s.terminate();
    assert!(status.success(), "{lines:#?}");
    let text = lines.join("\n");
    let version = env!("CARGO_PKG_VERSION");
    assert!(text.contains(&format!("strata {version} starting: data directory db, listen address {addr}")), "{text}");
    assert!(text.contains("retention: default: raw forever, 5m forever, 1h forever"), "{text}");
    assert!(text.contains("recovered: 0 segments"), "{text}");
    assert!(lines.iter().all(|l| !l.contains("DEBUG")), "debug lines at the default level: {text}");

    // `:PORT` means every interface, which without a token needs --insecure.
    let out = crate::support::output(&mut command(tmp.path(), &["--data", "open", "--listen", ":0"], &[])).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refusing to listen on non-loopback address 0.0.0.0:0"), "{err}");
    assert!(!tmp.path().join("open").exists());
}

#[test]
fn metrics_carry_build_info_and_process_figures() {
    let s = server_util::start();
    let text = s.get("/metrics").text();
    let value = |name: &str| -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    assert_eq!(value(&format!("strata_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))), Some(1.0));
    assert!(text.contains("# TYPE strata_build_info gauge"));
    if cfg!(target_os = "linux") {
        assert!(value("process_resident_memory_bytes").is_some_and(|b| b > 1e6), "{text}");
        assert!(value("process_cpu_seconds_total").is_some_and(|c| c >= 0.0), "{text}");
        let open = value("process_open_fds").unwrap();
        assert!(open >= 3.0 && open <= value("process_max_fds").unwrap(), "{text}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let started = value("process_start_time_seconds").unwrap();
        // This test process started at most an hour ago, and not in the future.
        assert!(started <= now + 1.0 && started > now - 3600.0, "{started} vs {now}");
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
    }
}

#[test]
fn engine_records_reach_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("db");
    {
        let opts = strata::Options::default().sync(strata::SyncMode::Always).background(false);
        let db = strata::Db::open(&data, opts).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let l = strata::Labels::from_pairs([("__name__", "m")]).unwrap();
        for i in 0..3 {
            let mut app = db.appender();
            app.append_labels(&l, now - 1000 + i, i as f64).unwrap();
            app.commit().unwrap();
        }
        db.close().unwrap();
    }
    // Tear the tail of the WAL: recovery cuts it, and the engine says so.
    let wal = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(len - 3).unwrap();

    let mut s = spawn(tmp.path(), &["--data", "db", "--listen", "127.0.0.1:0", "--log-format", "json"], &[]);
    s.addr();
    let (status, lines) = s.terminate();
    assert!(status.success(), "{lines:#?}");
    let logs: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let engine = logs.iter().find(|v| v["target"].as_str().unwrap().starts_with("strata::wal"));
    let engine = engine.unwrap_or_else(|| panic!("no engine record: {lines:#?}"));
    assert_eq!(engine["level"], "warn");
    assert!(engine["message"].as_str().unwrap().contains("torn tail"), "{engine}");
    assert!(
        logs.iter()
            .any(|v| v["target"] == "strata::server"
                && v["message"].as_str().unwrap().contains("torn or corrupt WAL tail")),
        "{lines:#?}"
    );
}
