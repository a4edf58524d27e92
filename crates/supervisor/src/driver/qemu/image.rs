//! What a QEMU job boots, read from the image manifest, and its disk: the chain of read-only
//! layers (checked with `qemu-img info --backing-chain`) under the job's own qcow2 overlay.
//!
//! Attributes (see `docs/images.md`):
//! - the book's `org.tockos.treadmill.image.qemu_layered_v0.head` (image) names the top disk
//!   layer; `…qemu_layered_v0.lower` (on a blob) names the layer below it;
//! - `org.paddock.qemu.kernel`, `org.paddock.qemu.initrd`, `org.paddock.qemu.cmdline` (image):
//!   direct boot of a kernel; `org.paddock.qemu.disk` names a disk blob (its `lower` attributes
//!   are followed as for `head`) when the image is not `qemu_layered_v0`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

use super::super::{HostError, HostJob};

pub const ATTR_LAYERED_HEAD: &str = "org.tockos.treadmill.image.qemu_layered_v0.head";
pub const ATTR_LAYERED_LOWER: &str = "org.tockos.treadmill.image.qemu_layered_v0.lower";
pub const ATTR_KERNEL: &str = "org.paddock.qemu.kernel";
pub const ATTR_INITRD: &str = "org.paddock.qemu.initrd";
pub const ATTR_CMDLINE: &str = "org.paddock.qemu.cmdline";
pub const ATTR_DISK: &str = "org.paddock.qemu.disk";

/// Longest kernel command line accepted.
const MAX_CMDLINE: usize = 4096;
/// Longest time a `qemu-img` command may take.
const QEMU_IMG_TIMEOUT: Duration = Duration::from_secs(60);

/// How a job's VM boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootPlan {
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
    /// The disk's layers, top first; empty: no disk.
    pub disk: Vec<Layer>,
}

/// One read-only disk layer: a verified blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub blob: String,
    pub path: PathBuf,
}

/// A layer as `qemu-img info` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedLayer {
    pub path: PathBuf,
    /// `qcow2`, or `raw` for the bottom layer.
    pub format: String,
}

fn refuse(job: &HostJob, what: impl std::fmt::Display) -> HostError {
    HostError::Image(format!("image {}: {what}", job.image.id))
}

fn blob_path(job: &HostJob, attr: &str, name: &str) -> Result<PathBuf, HostError> {
    job.image
        .blobs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .ok_or_else(|| {
            refuse(
                job,
                format!("{attr} names blob {name:?}, which the image lacks"),
            )
        })
}

/// Reads the manifest's attributes into a plan; refuses what the driver cannot run.
pub fn plan(job: &HostJob) -> Result<BootPlan, HostError> {
    let m = &job.image.manifest;
    let attr = |k: &str| m.attrs.get(k).map(String::as_str);
    let kernel = attr(ATTR_KERNEL)
        .map(|b| blob_path(job, ATTR_KERNEL, b))
        .transpose()?;
    let initrd = attr(ATTR_INITRD)
        .map(|b| blob_path(job, ATTR_INITRD, b))
        .transpose()?;
    let cmdline = attr(ATTR_CMDLINE).map(str::to_string);
    if kernel.is_none() && (initrd.is_some() || cmdline.is_some()) {
        return Err(refuse(
            job,
            format!("{ATTR_INITRD} and {ATTR_CMDLINE} need {ATTR_KERNEL}"),
        ));
    }
    if let Some(c) = &cmdline
        && (c.len() > MAX_CMDLINE || c.chars().any(char::is_control))
    {
        return Err(refuse(
            job,
            format!("{ATTR_CMDLINE} must be one line of at most {MAX_CMDLINE} bytes"),
        ));
    }
    let top = match (attr(ATTR_LAYERED_HEAD), attr(ATTR_DISK)) {
        (Some(_), Some(_)) => {
            return Err(refuse(
                job,
                format!("{ATTR_LAYERED_HEAD} and {ATTR_DISK} both name a disk"),
            ));
        }
        (Some(h), None) => Some((ATTR_LAYERED_HEAD, h)),
        (None, Some(d)) => Some((ATTR_DISK, d)),
        (None, None) => None,
    };
    if kernel.is_none() && top.is_none() {
        return Err(refuse(
            job,
            format!(
                "not a QEMU image: it has neither {ATTR_LAYERED_HEAD} nor {ATTR_KERNEL} \
                 (see docs/images.md)"
            ),
        ));
    }
    let mut disk = Vec::new();
    if let Some((attr_name, first)) = top {
        let mut attr_name = attr_name.to_string();
        let mut name = first.to_string();
        loop {
            if disk.iter().any(|l: &Layer| l.blob == name) {
                return Err(refuse(
                    job,
                    format!("the disk layers form a loop at blob {name:?}"),
                ));
            }
            let path = blob_path(job, &attr_name, &name)?;
            disk.push(Layer {
                blob: name.clone(),
                path,
            });
            match m
                .blobs
                .get(&name)
                .and_then(|b| b.attrs.get(ATTR_LAYERED_LOWER))
            {
                Some(lower) => {
                    attr_name = format!("blob {name}: {ATTR_LAYERED_LOWER}");
                    name = lower.clone();
                }
                None => break,
            }
        }
    }
    Ok(BootPlan {
        kernel,
        initrd,
        cmdline,
        disk,
    })
}

/// One entry of `qemu-img info --backing-chain --output=json`.
#[derive(Debug, Deserialize)]
struct InfoEntry {
    filename: String,
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "backing-filename")]
    backing_filename: Option<String>,
    #[serde(rename = "format-specific")]
    format_specific: Option<serde_json::Value>,
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Runs a `qemu-img` command, bounded; its standard output, or an error with its standard error.
async fn qemu_img(program: &str, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(QEMU_IMG_TIMEOUT, cmd.output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Err(format!("running {program}: {e}")),
        Err(_) => {
            return Err(format!(
                "{program} took over {} s",
                QEMU_IMG_TIMEOUT.as_secs()
            ));
        }
    };
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: String = err.trim().chars().take(2000).collect();
        Err(format!("{program} failed ({}): {err}", out.status))
    }
}

/// Checks the disk's backing chain as QEMU reads it: exactly the manifest's layers, in order,
/// the bottom one without a backing file, all qcow2 (the bottom one may be raw), none with an
/// external data file. A chain that names anything else (another file of the machine, a
/// missing layer) is refused. Returns each layer's format and the disk's virtual size.
pub async fn check_chain(
    qemu_img_program: &str,
    layers: &[Layer],
) -> Result<(Vec<CheckedLayer>, u64), String> {
    let Some(top) = layers.first() else {
        return Err("no disk layer".into());
    };
    let out = qemu_img(
        qemu_img_program,
        &[
            "info".as_ref(),
            "--backing-chain".as_ref(),
            "--output=json".as_ref(),
            top.path.as_os_str(),
        ],
    )
    .await
    .map_err(|e| format!("the disk's backing chain could not be read: {e}"))?;
    let entries: Vec<InfoEntry> = serde_json::from_slice(&out)
        .map_err(|e| format!("unexpected qemu-img info output: {e}"))?;
    if entries.len() != layers.len() {
        return Err(format!(
            "the disk's backing chain has {} layer(s), the manifest names {}",
            entries.len(),
            layers.len()
        ));
    }
    let mut checked = Vec::new();
    for (i, (e, l)) in entries.iter().zip(layers).enumerate() {
        let bottom = i + 1 == layers.len();
        if !same_file(Path::new(&e.filename), &l.path) {
            return Err(format!(
                "layer {i} of the disk's backing chain is {:?}, not blob {:?}",
                e.filename, l.blob
            ));
        }
        let format_ok = e.format == "qcow2" || (bottom && e.format == "raw");
        if !format_ok {
            return Err(format!(
                "blob {:?} is {}: layers must be qcow2 (the bottom one may be raw)",
                l.blob, e.format
            ));
        }
        if bottom && e.backing_filename.is_some() {
            return Err(format!(
                "blob {:?} is the bottom layer but names a backing file",
                l.blob
            ));
        }
        if e.format_specific
            .as_ref()
            .and_then(|f| f.get("data"))
            .and_then(|d| d.get("data-file"))
            .is_some()
        {
            return Err(format!(
                "blob {:?} uses an external data file, which is refused",
                l.blob
            ));
        }
        checked.push(CheckedLayer {
            path: l.path.clone(),
            format: e.format.clone(),
        });
    }
    Ok((checked, entries[0].virtual_size))
}

/// Makes the job's qcow2 overlay over the top layer (backing format explicit; the layers are
/// not opened again, they were just checked).
pub async fn create_overlay(
    qemu_img_program: &str,
    top: &CheckedLayer,
    size: u64,
    overlay: &Path,
) -> Result<(), String> {
    let size = size.to_string();
    qemu_img(
        qemu_img_program,
        &[
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-u".as_ref(),
            "-F".as_ref(),
            top.format.as_ref(),
            "-b".as_ref(),
            top.path.as_os_str(),
            overlay.as_os_str(),
            size.as_ref(),
        ],
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("creating the job's disk overlay: {e}"))
}

/// `-blockdev` arguments (JSON) for the disk: the layers bottom first, read-only, each
/// naming the one below explicitly (QEMU never follows the names in the images' headers),
/// and the job's overlay on top as node `disk0`.
pub fn blockdev_args(layers: &[CheckedLayer], overlay: &Path) -> Vec<String> {
    let mut args = Vec::new();
    let n = layers.len();
    for (i, l) in layers.iter().enumerate().rev() {
        let mut node = serde_json::json!({
            "driver": l.format,
            "node-name": format!("layer{i}"),
            "read-only": true,
            "file": {
                "driver": "file",
                "filename": l.path.to_string_lossy(),
                "read-only": true,
            },
        });
        if l.format == "qcow2" {
            // QMP's blockdev options are QEMU's JSON (written, not read): a qcow2 layer names
            // its backing node, or null for none.
            node["backing"] = if i + 1 < n {
                serde_json::Value::String(format!("layer{}", i + 1))
            } else {
                serde_json::Value::Null
            };
        }
        args.push("-blockdev".to_string());
        args.push(node.to_string());
    }
    let top = serde_json::json!({
        "driver": "qcow2",
        "node-name": "disk0",
        "file": {"driver": "file", "filename": overlay.to_string_lossy()},
        "backing": "layer0",
    });
    args.push("-blockdev".to_string());
    args.push(top.to_string());
    args.push("-device".to_string());
    args.push("virtio-blk-pci,drive=disk0".to_string());
    args
}
