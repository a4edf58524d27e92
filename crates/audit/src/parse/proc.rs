//! Files of /proc: cpuinfo, meminfo, modules, mounts.

use super::ParseError;

/// `/proc/meminfo`: `(key, kB)`.
pub fn meminfo(text: &str) -> Result<Vec<(String, u64)>, ParseError> {
    let out: Vec<(String, u64)> = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n = v.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_string(), n))
        })
        .collect();
    if !out.iter().any(|(k, _)| k == "MemTotal") {
        return Err(ParseError::new("meminfo", "no MemTotal"));
    }
    Ok(out)
}

/// `/proc/cpuinfo`: one `(key, value)` list per logical CPU.
pub fn cpuinfo(text: &str) -> Result<Vec<Vec<(String, String)>>, ParseError> {
    let mut cpus = Vec::new();
    let mut cur = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                cpus.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cpus.iter().any(|c| c.iter().any(|(k, _)| k == "processor")) {
        return Err(ParseError::new("cpuinfo", "no `processor` entries"));
    }
    Ok(cpus)
}

/// `/proc/modules`: the names of loaded modules.
pub fn modules(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `/proc/mounts`: `(device, mountpoint, fstype)`, with octal escapes (`\040`) decoded.
pub fn mounts(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((
                unescape(f.next()?),
                unescape(f.next()?),
                f.next()?.to_string(),
            ))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_files() {
        assert_eq!(
            super::meminfo("MemTotal:  16 kB\nMemFree: 2 kB\n").unwrap()[0].1,
            16
        );
        assert!(super::meminfo("garbage").is_err());
        let c = super::cpuinfo("processor\t: 0\nmodel name\t: X\n\nprocessor\t: 1\n").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            super::modules("kvm 1 0 - Live 0x0\nvfio 2 0\n"),
            ["kvm", "vfio"]
        );
        let m = super::mounts("/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n");
        assert_eq!(m[0].1, "/mnt/my disk");
        assert_eq!(super::unescape("a\\04"), "a\\04");
    }
}
