# What each module adds to its `settings` before rendering them to TOML: the paths of the
# unit's credentials and state. Builtins only, so that CI evaluates it without nixpkgs
# (crates/cli/tests/hosts.rs checks that each host's TOML file, which .ci/check-nix passes
# through the service's check-config, is exactly what the module would render from it).
rec {
  # Where a LoadCredential file appears inside its unit.
  credentialPath = unit: name: "/run/credentials/${unit}.service/${name}";

  # services.paddock.switchboard; `databaseUrl`: a databaseUrlFile is given.
  switchboard = { settings, databaseUrl }: settings
    // (if databaseUrl then { database_url_file = credentialPath "paddock-switchboard" "database-url"; } else { });

  supervisorUnit = name: "paddock-supervisor-${name}";

  # services.paddock.supervisors.<name>
  supervisor = name: settings: settings // {
    token_file = credentialPath (supervisorUnit name) "token";
    work_dir = "/var/lib/${supervisorUnit name}/work";
  };

  # services.paddock.deploy; `webhook`: a webhookSecretFile is given.
  deploy = { settings, webhook }: settings // {
    token_file = credentialPath "paddock-deploy" "token";
    state_dir = "/var/lib/paddock-deploy";
  } // (if webhook then { webhook_secret_file = credentialPath "paddock-deploy" "webhook"; } else { });

  # The deploy unit's GIT_SSH_COMMAND (gix runs ssh with it): its deploy key, and the pinned
  # known_hosts file, or, when none is given (null), trust on first use kept in its state
  # directory. crates/cli/tests/deploy_ssh.rs fetches through both against a real sshd.
  deploySshCommand = { knownHostsFile }:
    "ssh -i ${credentialPath "paddock-deploy" "ssh-key"} " + (if knownHostsFile != null
      then "-o UserKnownHostsFile=${knownHostsFile} -o StrictHostKeyChecking=yes"
      else "-o UserKnownHostsFile=/var/lib/paddock-deploy/known_hosts -o StrictHostKeyChecking=accept-new");

  # services.paddock.imagestore: how its unit gets to write `settings.root`. Under /var/lib/ the
  # root is the unit's StateDirectory (the part after /var/lib/): systemd makes it and, the
  # unit's user being dynamic, chowns it to that user at each start. Anywhere else (null here)
  # the module runs the unit as a fixed system user that owns the root, because a dynamic
  # user's UID is not known in advance and may change between starts (nothing could own the
  # directory for it), and opens it with ReadWritePaths under ProtectSystem = "strict".
  imagestoreStateDirectory = root:
    let
      prefix = "/var/lib/";
      n = builtins.stringLength prefix;
      rest = builtins.substring n (builtins.stringLength root) root;
    in
    if builtins.substring 0 n root == prefix && rest != "" && builtins.match "(.*/)?\\.\\.?(/.*)?" rest == null
    then rest
    else null;

  # services.paddock.audit: whether the build-time check-config can read the baseline. A Nix
  # path (`../baselines/x.yaml`, copied to the store when rendered) or a string with store
  # context (a derivation's output) is in the build's sandbox; a plain absolute path string
  # (`"/etc/paddock/baseline.yaml"`, a file kept on the host) is not: it is read only when the
  # unit runs, so the build checks the rest of the configuration without it.
  auditBaselineAtBuild = baseline: builtins.isPath baseline || builtins.hasContext (toString baseline);

  # services.paddock.audit; `token`: a tokenFile is given; `baseline`: a path or null.
  audit = { settings, token, baseline }: settings // {
    output = "/var/lib/paddock-audit/report.json";
  } // (if token then { token_file = credentialPath "paddock-audit" "token"; } else { })
    // (if baseline != null then { baseline = "${baseline}"; } else { });
}
