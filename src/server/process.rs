//! The standard `process_*` metrics of Prometheus client libraries, read from
//! `/proc/self` at scrape time (Linux only; other systems leave them out). A figure
//! that cannot be read is left out rather than reported as 0.

use std::time::Duration;

/// Figures of this process; each is `None` when its source could not be read.
#[derive(Debug, Default)]
pub(crate) struct Process {
    pub resident_bytes: Option<u64>,
    pub cpu: Option<Duration>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    /// Unix seconds.
    pub start_time: Option<f64>,
}

pub(crate) fn read() -> Process {
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let fields = stat.as_deref().and_then(stat_fields);
    let num = |i: usize| fields.as_ref().and_then(|f| f.get(i)).and_then(|v| v.parse::<u64>().ok());
    // Field numbers of proc(5), counted from 1 for `pid`; `fields` starts at field 3.
    let cpu = num(14 - 3).zip(num(15 - 3)).map(|(u, s)| Duration::from_secs_f64((u + s) as f64 / ticks));
    let start_time = num(22 - 3).zip(boot_time()).map(|(since_boot, boot)| boot as f64 + since_boot as f64 / ticks);
    let max = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    Process {
        resident_bytes: vm_rss(),
        cpu,
        open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64),
        max_fds: max,
        start_time,
    }
}

/// The fields of `/proc/self/stat` after the command name, which is in parentheses
/// and may itself hold spaces and parentheses: split after the last `)`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// `VmRSS` of `/proc/self/status`, in bytes (the file gives kB).
fn vm_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// Boot time in Unix seconds (`btime` of `/proc/stat`).
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_with_parentheses_do_not_shift_fields() {
        let f = stat_fields("42 (a) b (c)) S 1 2 3").unwrap();
        assert_eq!(f, ["S", "1", "2", "3"]);
        assert!(stat_fields("garbage").is_none());
    }

    #[test]
    fn reads_this_process() {
        let p = read();
        assert!(p.resident_bytes.is_some_and(|b| b > 0));
        assert!(p.open_fds.is_some_and(|n| n >= 3));
        assert!(p.max_fds.is_some_and(|n| n >= p.open_fds.unwrap()));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let started = p.start_time.unwrap();
        assert!(started <= now + 1.0 && started > now - 86_400.0 * 365.0, "{started} vs {now}");
        assert!(p.cpu.is_some());
    }
}
