# agenix recipients: which keys can decrypt each secret (`agenix -e <name>.age` edits one,
# `agenix -r` re-encrypts all after a change here). Hosts decrypt with their SSH host key;
# admins with their own key. Secrets land in /run/agenix/<name> on the host, the paths the
# example hosts give the Paddock modules (which pass them to the units with LoadCredential).
#
# EXAMPLE KEYS ONLY: the keys below are the public halves of secrets/example-keys/, whose
# private halves are committed on purpose so that CI can decrypt the example .age files here.
# They belong to no real machine or person and every secret encrypted to them is public.
# Replace each with a real public key (`ssh-keyscan -t ed25519 HOST`, or the host's
# /etc/ssh/ssh_host_ed25519_key.pub; an admin's ~/.ssh/id_ed25519.pub) and re-create every
# .age file (`agenix -e`) before a real deployment. .ci/check-secrets checks that each .age
# file opens with exactly the keys listed for it.
let
  # Admins (example).
  admin-example = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNJKdIlNVHYaHXAha6LfltHKotdIXRemgVXvqfKjl3g admin-example-EXAMPLE-KEY";
  admins = [ admin-example ];

  # Hosts (example): the SSH host keys of hosts/switchboard-example and hosts/site-example.
  switchboard-example = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO6LFgMu1H/MRGmtr30dzcq+X9wnGQaZZKeduVDsBrDE switchboard-example-EXAMPLE-KEY";
  site-example = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPwYEQ3xrrbwEJ3Esbre/mn4FiVXaDU0Zh0GxswPoYiA site-example-EXAMPLE-KEY";
in
{
  # The switchboard's database URL with its password, for a PostgreSQL server elsewhere
  # (services.paddock.switchboard.databaseUrlFile; hosts/switchboard-example itself uses peer
  # authentication on the local server and needs none).
  "switchboard-db.age".publicKeys = admins ++ [ switchboard-example ];
  # An admin API token of the switchboard, for paddock-deploy (both servers run one).
  "deploy-token.age".publicKeys = admins ++ [ switchboard-example site-example ];
  # The push webhook's shared secret (the forge has the same).
  "deploy-webhook.age".publicKeys = admins ++ [ switchboard-example ];
  # A read-only deploy key of the deployments repo.
  "deploy-key.age".publicKeys = admins ++ [ switchboard-example site-example ];
  # One token per supervisor (`paddock supervisor token new`: its hash goes into the
  # deployments repo, the token into this file).
  "supervisor-lab1-local-1.age".publicKeys = admins ++ [ site-example ];
  "supervisor-lab1-local-2.age".publicKeys = admins ++ [ site-example ];
  # A token with manage_supervisors for the audit agent's reports.
  "audit-token.age".publicKeys = admins ++ [ site-example ];
}
