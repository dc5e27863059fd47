//! A `strata serve` child process, started as operators start it, whose stderr
//! lines are collected as they come.

use super::server_util;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `strata serve` child whose stderr lines are collected as they come.
pub struct Served {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

pub fn command(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.current_dir(cwd).arg("serve").args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

pub fn spawn(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut child = super::spawn(&mut command(cwd, args, env)).expect("the strata binary runs");
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    Served { child, lines, reader: Some(reader) }
}

impl Served {
    /// The address from the `listening on http://ADDR` line, once the server is ready.
    pub fn addr(&mut self) -> SocketAddr {
        let found = server_util::wait_for(Duration::from_secs(30), || {
            let lines = self.lines.lock().unwrap();
            lines.iter().find_map(|l| {
                let rest = &l[l.find("listening on http://")? + "listening on http://".len()..];
                rest.split(['"', ' ']).next()?.parse().ok()
            })
        });
        match found {
            Some(a) => a,
            None => {
                let _ = self.child.kill();
                panic!("server did not start: {:#?}", self.lines.lock().unwrap());
            }
        }
    }

    /// SIGTERM, then the exit status and every stderr line.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(super::status(Command::new("kill").args(["-TERM", &pid])).unwrap().success());
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let lines = self.lines.lock().unwrap().clone();
        (status, lines)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
