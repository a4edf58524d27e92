//! A minimal QMP client: the greeting, `qmp_capabilities`, then one command at a time.
//! Asynchronous events QEMU sends meanwhile are skipped. Every read is bounded by the
//! caller's timeouts; a line longer than 1 MiB ends the connection.

use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

const MAX_LINE: usize = 1 << 20;

#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Qmp {
    /// Connects and negotiates capabilities.
    pub async fn connect(path: &Path) -> Result<Qmp, String> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| format!("connecting to QMP at {}: {e}", path.display()))?;
        let (r, w) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(r),
            writer: w,
        };
        let greeting = qmp.read_message().await?;
        if greeting.get("QMP").is_none() {
            return Err(format!("unexpected QMP greeting: {greeting}"));
        }
        qmp.execute("qmp_capabilities").await?;
        Ok(qmp)
    }

    async fn read_message(&mut self) -> Result<serde_json::Value, String> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| format!("reading QMP: {e}"))?;
        if n == 0 {
            return Err("QMP closed the connection".into());
        }
        if !line.ends_with(b"\n") {
            return Err("QMP message too long".into());
        }
        serde_json::from_slice(&line).map_err(|e| format!("bad QMP message: {e}"))
    }

    /// Runs a command without arguments; its `return` value.
    pub async fn execute(&mut self, command: &str) -> Result<serde_json::Value, String> {
        let mut msg = serde_json::json!({ "execute": command }).to_string();
        msg.push('\n');
        self.writer
            .write_all(msg.as_bytes())
            .await
            .map_err(|e| format!("writing to QMP: {e}"))?;
        loop {
            let m = self.read_message().await?;
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                return Err(format!("QMP {command}: {e}"));
            }
            // An event: skip it.
        }
    }
}
