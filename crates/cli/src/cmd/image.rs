//! `paddock image …`: build images (`import` into a local store, `push` to a store server),
//! read them (`list`, `show`, from a server with `PADDOCK_IMAGESTORE_URL` or from a local
//! store), and copy them (`pull` one image, `mirror` a whole store).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use paddock_client::StoreClient;
use paddock_core::api::images::{ImageShown, ImageSummary};
use paddock_imagestore::LocalStore;
use paddock_imagestore::import::ImportOptions;
use paddock_imagestore::mirror::{MirrorOptions, MirrorProgress, NoProgress, mirror_with_progress};
use paddock_imagestore::transfer;

const DEFAULT_STORE: &str = ".paddock/store";

#[derive(Debug, Args)]
pub struct StoreArg {
    /// The local image store directory (`paddock up` uses DATA_DIR/store).
    #[arg(long, env = "PADDOCK_STORE", default_value = DEFAULT_STORE)]
    store: PathBuf,
}

#[derive(Debug, Args)]
pub struct RemoteArg {
    /// The image store server, e.g. http://127.0.0.1:8081.
    #[arg(long = "url", env = "PADDOCK_IMAGESTORE_URL")]
    url: Option<String>,
    /// A push token (from `paddock-imagestore token add`).
    #[arg(long, env = "PADDOCK_IMAGESTORE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Where a read command reads: `--store` wins; else the server when a URL is set; else the
/// default local store.
#[derive(Debug, Args)]
pub struct SourceArg {
    /// A local image store directory [default: the server if PADDOCK_IMAGESTORE_URL is set,
    /// else .paddock/store].
    #[arg(long, env = "PADDOCK_STORE")]
    store: Option<PathBuf>,
    #[command(flatten)]
    remote: RemoteArg,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A script to run, or a directory to archive (its entry point is run); for `push`
    /// also a built image directory (`mkImageStore`'s output, `assemble`'s store: it has
    /// image.txt), published as it is.
    source: PathBuf,
    /// The image's label (required unless SOURCE is a built image).
    #[arg(long)]
    label: Option<String>,
    /// Default: one more than the newest revision of this label in the store.
    #[arg(long)]
    revision: Option<u64>,
    #[arg(long, default_value = "")]
    description: String,
    /// For a directory: the file inside it to run.
    #[arg(long, default_value = "run.sh")]
    entry_point: String,
    /// The job becomes ready only when the workload runs `paddock-puppet ready`
    /// (default: as soon as it starts).
    #[arg(long)]
    ready_on_puppet: bool,
}

impl BuildArgs {
    fn label(&self) -> anyhow::Result<String> {
        self.label.clone().with_context(|| {
            format!(
                "--label is required to build an image from {}",
                self.source.display()
            )
        })
    }

    fn options(&self, revision: Option<u64>) -> anyhow::Result<ImportOptions> {
        Ok(ImportOptions {
            label: self.label()?,
            revision: self.revision.or(revision),
            description: self.description.clone(),
            entry_point: Some(self.entry_point.clone()),
            ready_on_puppet: self.ready_on_puppet,
        })
    }
}

/// `NAME=VALUE` of a repeated option.
fn pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))
}

#[derive(Debug, Args)]
pub struct AssembleArgs {
    /// The image's label (jobs name it by label, its newest revision, or `label@revision`).
    #[arg(long)]
    label: String,
    /// The image's revision (a number; the newest of a label is the one its label names).
    #[arg(long)]
    revision: u64,
    #[arg(long, default_value = "")]
    description: String,
    /// A blob NAME=FILE; repeat for several.
    #[arg(long = "blob", value_parser = pair, required = true)]
    blobs: Vec<(String, String)>,
    /// An image attribute NAME=VALUE; repeat for several.
    #[arg(long = "attr", value_parser = pair)]
    attrs: Vec<(String, String)>,
    /// A blob's attribute BLOB.NAME=VALUE (e.g. `disk.org.tockos.…=…`: up to the first dot is
    /// the blob); repeat for several.
    #[arg(long = "blob-attr", value_parser = pair)]
    blob_attrs: Vec<(String, String)>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build a local-driver image from a script file or a directory into a local store;
    /// prints only the image id.
    Import {
        #[command(flatten)]
        build: BuildArgs,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Write an image from named blob files and attributes into a store directory, and name
    /// it in DIR/image.txt (what the Nix `mkImageStore` runs); prints only the image id.
    Assemble {
        #[command(flatten)]
        args: AssembleArgs,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Build an image like `import` (or take a built image directory) and upload it to a store
    /// server; prints only the image id.
    Push {
        #[command(flatten)]
        build: BuildArgs,
        #[command(flatten)]
        remote: RemoteArg,
    },
    /// List images: label, revision, id, size.
    List {
        /// Print the list as JSON (the API's records) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: SourceArg,
    },
    /// Show one image (id, label or label@revision) with its manifest.
    Show {
        /// The image: its id, its label (newest revision) or `label@revision`.
        name: String,
        /// Print the summary and the manifest as stored, as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: SourceArg,
    },
    /// Download one image (id, label or label@revision) from a store server into a local
    /// store directory, every file verified.
    Pull {
        /// The image: its id, its label (newest revision) or `label@revision`.
        name: String,
        /// The local store directory to copy it into (created when missing).
        dir: PathBuf,
        #[command(flatten)]
        remote: RemoteArg,
    },
    /// Copy a whole store (Paddock or Treadmill format, read through its all.txt) into DIR:
    /// parallel, resumable, every file verified. Exit status 1 if any file failed.
    Mirror {
        /// The store to copy: `http://HOST:PORT` of a store server or of any static server of
        /// a store's files (its all.txt is read).
        url: String,
        /// The local directory to copy it into (created when missing).
        dir: PathBuf,
        /// Downloads at once.
        #[arg(long, default_value_t = 8)]
        parallel: usize,
        /// Wait until everything mirrored is on disk (one syncfs at the end). Without it the
        /// data is written back in the background; files are never fsynced one by one, and a
        /// later run after a machine restart re-checks what this run wrote.
        #[arg(long)]
        sync: bool,
        /// Print the report as JSON on standard output.
        #[arg(long)]
        json: bool,
    },
}

fn client(remote: &RemoteArg) -> anyhow::Result<StoreClient> {
    let url = remote
        .url
        .as_deref()
        .context("no image store server: set PADDOCK_IMAGESTORE_URL or pass --url")?;
    crate::client::check_http_url(url, "the image store URL (--url or PADDOCK_IMAGESTORE_URL)")?;
    Ok(StoreClient::new(url, remote.token.clone()))
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One line per image; an image that cannot be used ends with `PROBLEM: why`.
fn print_table(images: &[ImageSummary]) {
    // A stored image Paddock cannot use is listed with its problem, never hidden.
    let problems = images.iter().any(|i| i.problem.is_some());
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            let mut row = vec![
                i.label.clone(),
                i.revision.to_string(),
                i.id.to_string(),
                i.size.to_string(),
            ];
            if problems {
                row.push(i.problem.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    let mut headers = vec!["LABEL", "REVISION", "ID", "SIZE"];
    if problems {
        headers.push("PROBLEM");
    }
    print!("{}", super::format_table(&headers, &rows, &[1, 3]));
}

fn local_list(store: &Path) -> anyhow::Result<Vec<ImageSummary>> {
    LocalStore::new(store)
        .list()
        .with_context(|| format!("reading {}", store.display()))
}

pub async fn run(cmd: ImageCommand) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Assemble { args, store } => {
            let mut blobs = std::collections::BTreeMap::new();
            for (name, file) in &args.blobs {
                blobs.insert(
                    name.clone(),
                    (PathBuf::from(file), std::collections::BTreeMap::new()),
                );
            }
            for (key, value) in &args.blob_attrs {
                let (blob, attr) = key
                    .split_once('.')
                    .with_context(|| format!("--blob-attr {key}: expected BLOB.NAME=VALUE"))?;
                let Some((_, attrs)) = blobs.get_mut(blob) else {
                    bail!("--blob-attr {key}: no --blob named {blob}");
                };
                attrs.insert(attr.to_string(), value.clone());
            }
            let s = LocalStore::new(&store.store);
            let id = s
                .assemble(&paddock_imagestore::import::AssembleOptions {
                    label: args.label.clone(),
                    revision: args.revision,
                    description: args.description.clone(),
                    attrs: args.attrs.iter().cloned().collect(),
                    blobs,
                })
                .with_context(|| {
                    format!("assembling {} into {}", args.label, store.store.display())
                })?;
            // The staging directory is not part of a built image.
            let _ = std::fs::remove_dir(store.store.join("tmp"));
            println!("{id}");
        }
        ImageCommand::Import { build, store } => {
            let s = LocalStore::new(&store.store);
            let id = s
                .import(&build.source, &build.options(None)?)
                // The error names the file it could not read; the store is named here.
                .with_context(|| format!("importing into {}", store.store.display()))?;
            eprintln!(
                "imported {} into {}",
                build.source.display(),
                store.store.display()
            );
            println!("{id}");
        }
        ImageCommand::Push { build, remote } => {
            let c = client(&remote)?;
            if let Some(id) = paddock_imagestore::import::built_image(&build.source) {
                let s = LocalStore::new(&build.source);
                s.verified_image(&id)
                    .with_context(|| format!("{}: image {id}", build.source.display()))?;
                let sent = transfer::push(&c, &s, &id).await?;
                eprintln!(
                    "pushed the built image {} ({sent} bytes uploaded)",
                    build.source.display()
                );
                println!("{id}");
                return Ok(());
            }
            let label = build.label()?;
            let next = c
                .list()
                .await?
                .images
                .iter()
                .filter(|i| i.label == label)
                .map(|i| i.revision)
                .max()
                .map_or(1, |r| r + 1);
            let scratch = Scratch(std::env::temp_dir().join(format!(
                "paddock-push-{}-{:x}",
                std::process::id(),
                rand::random::<u64>()
            )));
            let s = LocalStore::new(&scratch.0);
            let id = s
                .import(&build.source, &build.options(Some(next))?)
                // The error names the file it could not read.
                .context("building the image to push")?;
            let sent = transfer::push(&c, &s, &id).await?;
            eprintln!(
                "pushed {} as {} revision {} ({sent} bytes uploaded)",
                build.source.display(),
                label,
                build.revision.unwrap_or(next)
            );
            println!("{id}");
        }
        ImageCommand::List { json, source } => {
            let images = match (&source.store, &source.remote.url) {
                (None, Some(_)) => client(&source.remote)?.list().await?.images,
                (s, _) => local_list(s.as_deref().unwrap_or(Path::new(DEFAULT_STORE)))?,
            };
            if json {
                super::print_json(&serde_json::to_value(&images)?);
            } else {
                print_table(&images);
            }
        }
        ImageCommand::Show { name, json, source } => {
            let v = match (&source.store, &source.remote.url) {
                (None, Some(_)) => client(&source.remote)?.show(&name).await?,
                (s, _) => {
                    let store = LocalStore::new(s.as_deref().unwrap_or(Path::new(DEFAULT_STORE)));
                    let list = store.list()?;
                    let i =
                        paddock_imagestore::catalog::resolve(&list, &name).with_context(|| {
                            format!("no image {name:?} in {}", store.root().display())
                        })?;
                    if i.problem.is_none() {
                        store.verified_image(&i.id)?;
                    }
                    // As stored: every key of the file, none added.
                    let path = paddock_core::manifest::image_path(&i.id);
                    let bytes = paddock_imagestore::regular::read(store.root(), &path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    ImageShown::new(
                        i.clone(),
                        paddock_imagestore::catalog::manifest_json(&bytes),
                    )
                }
            };
            if json {
                super::print_json(&serde_json::to_value(&v)?);
            } else {
                println!("id:          {}", v.id);
                println!("label:       {}", v.label);
                println!("revision:    {}", v.revision);
                println!("description: {}", v.description);
                println!("size:        {}", v.size);
                if let Some(p) = &v.problem {
                    println!("problem:     {p}");
                }
                if let Some(blobs) = v
                    .manifest
                    .as_ref()
                    .and_then(|m| m["org.tockos.treadmill.manifest-ext.base.blobs"].as_object())
                {
                    for (name, b) in blobs {
                        println!(
                            "blob {name}: {} ({} bytes)",
                            b["org.tockos.treadmill.manifest-ext.base.sha256-digest"]
                                .as_str()
                                .unwrap_or(""),
                            b["org.tockos.treadmill.manifest-ext.base.size"]
                        );
                    }
                }
            }
        }
        ImageCommand::Pull { name, dir, remote } => {
            let id = transfer::pull(&client(&remote)?, &name, &dir).await?;
            eprintln!("pulled {name} into {}", dir.display());
            println!("{id}");
        }
        ImageCommand::Mirror {
            url,
            dir,
            parallel,
            sync,
            json,
        } => {
            let opts = MirrorOptions {
                parallel,
                sync,
                ..MirrorOptions::default()
            };
            crate::client::check_http_url(&url, "the store to mirror")?;
            // The progress line only on a terminal, and not with the JSON report.
            let progress: Arc<dyn MirrorProgress> = if std::io::stderr().is_terminal() && !json {
                super::mirror_progress::TerminalProgress::start()
            } else {
                Arc::new(NoProgress)
            };
            let r = mirror_with_progress(&url, &dir, &opts, progress).await?;
            if r.recovery.synced {
                eprintln!("mirror: an earlier run's writes are now on disk (syncfs)");
            }
            if r.recovery.rechecked > 0 {
                eprintln!(
                    "mirror: the machine restarted before an earlier run's writes were known to be on disk: re-checked {} files, {} corrupt and fetched again",
                    r.recovery.rechecked,
                    r.recovery.removed.len()
                );
                for p in &r.recovery.removed {
                    eprintln!("  CORRUPT {p}");
                }
            }
            if json {
                super::print_json(&serde_json::json!({
                    "listed": r.listed,
                    "present": r.present,
                    "fetched": r.fetched,
                    "fetched_bytes": r.fetched_bytes,
                    "resumed": r.resumed,
                    "ignored_lines": r.ignored_lines,
                    "seconds": r.seconds,
                    "synced": sync,
                    "rechecked": r.recovery.rechecked,
                    "corrupt_removed": r.recovery.removed,
                    "failed": r.failed.iter().map(|(p, why)| serde_json::json!({"path": p, "error": why})).collect::<Vec<_>>(),
                }));
            }
            if r.fetched == 0 && r.failed.is_empty() {
                eprintln!(
                    "mirror: nothing to transfer: all {} files of {url} are already in {}",
                    r.listed,
                    dir.display()
                );
            } else {
                let mib = r.fetched_bytes as f64 / (1024.0 * 1024.0);
                eprintln!(
                    "mirror: {} files listed, {} already present, {} fetched ({mib:.1} MiB in {:.1} s, {:.1} MiB/s{}), every file verified; {} failed",
                    r.listed,
                    r.present,
                    r.fetched,
                    r.seconds,
                    mib / r.seconds.max(0.001),
                    if r.resumed > 0 {
                        format!(", {} resumed", r.resumed)
                    } else {
                        String::new()
                    },
                    r.failed.len()
                );
            }
            if r.ignored_lines > 0 {
                eprintln!(
                    "mirror: ignored {} lines of all.txt that are not store paths",
                    r.ignored_lines
                );
            }
            if !r.failed.is_empty() {
                for (p, why) in &r.failed {
                    eprintln!("  FAILED {p}: {why}");
                }
                bail!("{} files could not be mirrored", r.failed.len());
            }
        }
    }
    Ok(())
}
