//! The live configuration a connected supervisor receives (`SwitchboardMessage::Config`):
//! its own declaration from the applied state, with its site's image stores and its PDU.

use serde_json::{Value, json};

use super::schema::DesiredState;
use crate::SupervisorId;

/// The configuration of supervisor `id` in `state`; `None` when the state does not declare
/// it. The token hash is left out (it is the switchboard's business, not the supervisor's).
pub fn supervisor_config(state: &DesiredState, id: SupervisorId) -> Option<Value> {
    state.sites.iter().find_map(|site| {
        let s = site.supervisors.iter().find(|s| s.id == id)?;
        let pdu = s
            .pdu
            .as_ref()
            .and_then(|name| site.pdus.iter().find(|p| &p.name == name))
            .map(|p| {
                json!({
                    "name": p.name,
                    "driver": p.driver,
                    "config": p.config,
                    "port": s.pdu_port,
                })
            });
        Some(json!({
            "site": site.name,
            "name": s.name,
            "kind": s.kind,
            "tags": s.tags,
            "retired": s.retired,
            "ready_for_service": s.ready_for_service,
            "comment": s.comment,
            "mac": s.mac,
            "image_stores": site.image_stores,
            "pdu": pdu,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supervisor_sees_its_site_and_pdu_not_its_token_hash() {
        let yaml = [
            (
                "db/switchboard.yaml".to_string(),
                "users:\n  - name: admin\n    privileges: [admin]\n".to_string(),
            ),
            (
                "db/sites/lab1.yaml".to_string(),
                "image_stores: [\"http://127.0.0.1:8081\"]\npdus:\n  - name: rack1\n    driver: dummy\n    config: {ports: 8}\nsupervisors:\n  - id: 0192f3a0-0000-7000-8000-000000000001\n    name: lab1-a\n    kind: qemu\n    pdu: rack1\n    pdu_port: \"3\"\n    token_sha256: \"0000000000000000000000000000000000000000000000000000000000000000\"\n".to_string(),
            ),
        ];
        let state = crate::deployments::load(&yaml).unwrap();
        let id: SupervisorId = "0192f3a0-0000-7000-8000-000000000001".parse().unwrap();
        let c = supervisor_config(&state, id).unwrap();
        assert_eq!(c["site"], "lab1");
        assert_eq!(c["kind"], "qemu");
        assert_eq!(c["image_stores"][0], "http://127.0.0.1:8081");
        assert_eq!(c["pdu"]["driver"], "dummy");
        assert_eq!(c["pdu"]["port"], "3");
        assert_eq!(c["pdu"]["config"]["ports"], 8);
        assert!(!c.to_string().contains("0000000000000000"), "{c}");
        let other: SupervisorId = "0192f3a0-0000-7000-8000-000000000009".parse().unwrap();
        assert!(supervisor_config(&state, other).is_none());
    }
}
