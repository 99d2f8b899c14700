//! Small helpers for files written atomically (a temporary file beside the target, then a
//! rename or link): making the rename durable, and removing the temporary files a killed
//! process left behind.

use std::path::Path;

/// Makes the entries of `dir` durable (a rename or link into it survives a power cut).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Removes the temporary files (or directories, as `rollscale backup` makes)
/// `<prefix><pid>.<anything>.tmp` in `dir` whose process is gone (a `kill -9` between writing
/// one and renaming it leaves it behind). Those of a process that
/// still runs (another `rollscale configure` writing the same file, say) are left alone, and
/// so are this process's own. Best effort: a file that cannot be removed stays.
pub fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(prefix).filter(|rest| rest.ends_with(".tmp")) else { continue };
        let Some(pid) = rest.split('.').next().and_then(|pid| pid.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !process_runs(pid) {
            let _ = match entry.file_type() {
                Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(entry.path()),
                _ => std::fs::remove_file(entry.path()),
            };
        }
    }
}

/// Whether a process with this id exists (one of another user's counts).
fn process_runs(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_temporary_files_of_gone_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A process id that cannot exist (above the kernel's maximum) stands for a gone one.
        let gone = dir.path().join(".config.json.4194305.0badc0de.tmp");
        let mine = dir.path().join(format!(".config.json.{}.00000001.tmp", std::process::id()));
        let parent = dir.path().join(format!(".config.json.{}.00000002.tmp", std::os::unix::process::parent_id()));
        let other = dir.path().join(".server.key.4194305.0badc0de.tmp");
        let gone_dir = dir.path().join(".config.json.4194305.0badc0df.tmp");
        std::fs::create_dir(&gone_dir).unwrap();
        std::fs::write(gone_dir.join("inside"), "x").unwrap();
        let profile = dir.path().join("config.json");
        for file in [&gone, &mine, &parent, &other, &profile] {
            std::fs::write(file, "x").unwrap();
        }
        remove_stale_temps(dir.path(), ".config.json.");
        assert!(!gone.exists() && !gone_dir.exists(), "a gone process's temporary file or directory is removed");
        assert!(mine.exists() && parent.exists(), "a running process's is kept");
        assert!(other.exists() && profile.exists(), "other files are untouched");
        sync_dir(dir.path()).unwrap();
    }
}
