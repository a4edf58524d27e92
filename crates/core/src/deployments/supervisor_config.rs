//! The live configuration a connected supervisor receives (`SwitchboardMessage::Config`):
//! its own declaration from the applied state, with its site's image stores and its PDU.

use serde_json::Value;

use super::schema::DesiredState;
use crate::SupervisorId;
use crate::protocol::{PduConfig, SupervisorConfig};

/// The configuration of supervisor `id` in `state`; `None` when the state does not declare
/// it. The token hash is left out (it is the switchboard's business, not the supervisor's).
pub fn config_of(state: &DesiredState, id: SupervisorId) -> Option<SupervisorConfig> {
    state.sites.iter().find_map(|site| {
        let s = site.supervisors.iter().find(|s| s.id == id)?;
        let pdu = s
            .pdu
            .as_ref()
            .and_then(|name| site.pdus.iter().find(|p| &p.name == name))
            .map(|p| PduConfig {
                config: p.config.clone(),
                driver: p.driver.clone(),
                name: p.name.clone(),
                port: s.pdu_port.clone(),
            });
        Some(SupervisorConfig {
            comment: s.comment.clone(),
            image_stores: site.image_stores.clone(),
            kind: s.kind,
            mac: s.mac.clone(),
            name: s.name.clone(),
            pdu,
            ready_for_service: s.ready_for_service,
            retired: s.retired,
            site: site.name.clone(),
            tags: s.tags.clone(),
        })
    })
}

/// [`config_of`] as JSON, as `config` of `SwitchboardMessage::Config` carries it.
pub fn supervisor_config(state: &DesiredState, id: SupervisorId) -> Option<Value> {
    config_of(state, id).map(|c| c.to_value())
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

    /// The configuration as it was built before it was typed (`json!`), for comparison.
    fn as_before(state: &DesiredState, id: SupervisorId) -> Option<Value> {
        use serde_json::json;
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

    #[test]
    fn the_typed_configuration_is_written_as_before() {
        let yaml = [
            (
                "db/switchboard.yaml".to_string(),
                "users:\n  - name: admin\n    privileges: [admin]\n".to_string(),
            ),
            (
                "db/sites/lab1.yaml".to_string(),
                "image_stores: [\"http://127.0.0.1:8081\", \"http://b:2\"]\npdus:\n  - name: rack1\n    driver: dummy\n    config: {ports: 8, on: \"echo on\"}\nsupervisors:\n  - id: 0192f3a0-0000-7000-8000-000000000001\n    name: lab1-a\n    kind: netboot\n    tags: [\"fw:v2\", usb]\n    mac: \"52:54:00:12:34:56\"\n    comment: bench 3\n    pdu: rack1\n    pdu_port: \"3\"\n  - id: 0192f3a0-0000-7000-8000-000000000002\n    name: lab1-b\n    kind: qemu\n    retired: true\n    ready_for_service: false\n".to_string(),
            ),
        ];
        let state = crate::deployments::load(&yaml).unwrap();
        for id in [
            "0192f3a0-0000-7000-8000-000000000001",
            "0192f3a0-0000-7000-8000-000000000002",
        ] {
            let id: SupervisorId = id.parse().unwrap();
            let before = as_before(&state, id).unwrap();
            let typed = config_of(&state, id).unwrap();
            assert_eq!(supervisor_config(&state, id).unwrap(), before);
            assert_eq!(
                serde_json::to_string(&typed).unwrap(),
                before.to_string(),
                "the same bytes"
            );
            assert_eq!(SupervisorConfig::read(&before).unwrap(), typed);
        }
    }
}
