//! A simulated supervisor that speaks the real `paddock.v1` protocol over a real WebSocket. The
//! integration tests and the scheduler benchmark use it; the switchboard cannot tell it from a
//! real supervisor.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use paddock_core::protocol::{RunningJob, SUBPROTOCOL, SupervisorMessage, SwitchboardMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("websocket")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("bad message: {0}")]
    Protocol(String),
    #[error("timed out")]
    Timeout,
    #[error("connection closed")]
    Closed,
}

/// One connection of a simulated supervisor.
#[derive(Debug)]
pub struct SimSupervisor {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The socket URL for a switchboard base URL (`http://host:port`).
pub fn socket_url(base: &str) -> String {
    format!(
        "{}/api/v1/supervisor/socket",
        base.replacen("http", "ws", 1)
    )
}

impl SimSupervisor {
    /// Connects with `token`, says `hello` with `running` jobs, and waits for `welcome`.
    pub async fn connect(
        base: &str,
        token: &str,
        running: Vec<RunningJob>,
    ) -> Result<SimSupervisor, SimError> {
        let mut req = socket_url(base).into_client_request()?;
        let h = req.headers_mut();
        h.insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .map_err(|_| SimError::Protocol("token".into()))?,
        );
        h.insert(
            "sec-websocket-protocol",
            SUBPROTOCOL
                .parse()
                .map_err(|_| SimError::Protocol("protocol".into()))?,
        );
        let (ws, _) = tokio_tungstenite::connect_async(req).await?;
        let mut sim = SimSupervisor { ws };
        sim.send(&SupervisorMessage::Hello {
            running_jobs: running,
            config_generation: None,
            agent_version: None,
        })
        .await?;
        match sim.recv_timeout(Duration::from_secs(10)).await? {
            SwitchboardMessage::Welcome { .. } => Ok(sim),
            other => Err(SimError::Protocol(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }

    pub async fn send(&mut self, msg: &SupervisorMessage) -> Result<(), SimError> {
        let text = serde_json::to_string(msg).map_err(|e| SimError::Protocol(e.to_string()))?;
        self.ws.send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// The next message that is not a heartbeat (answered) or a status request (ignored).
    pub async fn recv(&mut self) -> Result<SwitchboardMessage, SimError> {
        loop {
            let frame = self.ws.next().await.ok_or(SimError::Closed)??;
            match frame {
                Message::Text(t) => {
                    let msg: SwitchboardMessage = serde_json::from_str(t.as_str())
                        .map_err(|e| SimError::Protocol(e.to_string()))?;
                    if msg == SwitchboardMessage::Heartbeat {
                        self.send(&SupervisorMessage::Heartbeat).await?;
                        continue;
                    }
                    // The simulation keeps no job list to report; the switchboard needs no answer.
                    if msg == SwitchboardMessage::StatusRequest {
                        continue;
                    }
                    return Ok(msg);
                }
                Message::Close(_) => return Err(SimError::Closed),
                _ => continue,
            }
        }
    }

    pub async fn recv_timeout(&mut self, d: Duration) -> Result<SwitchboardMessage, SimError> {
        tokio::time::timeout(d, self.recv())
            .await
            .map_err(|_| SimError::Timeout)?
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
