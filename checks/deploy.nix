# NixOS VM test: the deploy module applying a pushed commit
# (`nix build .#checks.x86_64-linux.deploy`). Runs only where nixpkgs can be fetched.
{ self, pkgs }:
pkgs.testers.runNixOSTest {
  name = "paddock-deploy";
  nodes.machine = { pkgs, ... }: {
    imports = [ self.nixosModules.default ];
    environment.systemPackages = [ self.packages.${pkgs.stdenv.hostPlatform.system}.paddock pkgs.git ];
    services.paddock.switchboard.enable = true;
    services.paddock.deploy = {
      enable = true;
      tokenFile = "/var/lib/paddock-test/admin-token";
      settings = {
        switchboard_url = "http://127.0.0.1:8080";
        repo = "/var/lib/paddock-test/deployments.git";
        poll_interval_s = 1;
      };
    };
  };
  testScript = ''
    machine.wait_for_unit("paddock-switchboard.service")
    machine.wait_for_open_port(8080)
    admin = machine.succeed(
        "runuser -u paddock-switchboard -- paddock-switchboard user add admin --privilege admin "
        "--data-dir /var/lib/paddock-switchboard | tail -1"
    ).strip()
    machine.succeed(f"mkdir -p /var/lib/paddock-test && echo {admin} > /var/lib/paddock-test/admin-token")
    machine.succeed(
        "git init -q --bare -b main /var/lib/paddock-test/deployments.git && chmod -R a+rX /var/lib/paddock-test",
        "cp -r ${../examples/deployments} /tmp/w && chmod -R u+w /tmp/w && cd /tmp/w && git init -q -b main "
        "&& git add -A && git -c user.name=t -c user.email=t@example.org commit -qm lab1 "
        "&& git push -q /var/lib/paddock-test/deployments.git main",
    )
    machine.succeed("systemctl restart paddock-deploy.service")
    env = f"PADDOCK_URL=http://127.0.0.1:8080 PADDOCK_TOKEN={admin}"
    machine.wait_until_succeeds(f"{env} paddock supervisor list --json | grep -q lab1-nrf52", timeout=60)
    # A pushed commit adding a supervisor is applied within the poll interval.
    machine.succeed(
        "cd /tmp/w && printf '  - id: 0192f3a0-0000-7000-8000-000000000004\\n    name: lab1-local-3\\n    kind: local\\n' "
        ">> db/sites/lab1.yaml && git -c user.name=t -c user.email=t@example.org commit -qam add "
        "&& git push -q /var/lib/paddock-test/deployments.git main"
    )
    machine.wait_until_succeeds(f"{env} paddock supervisor list --json | grep -q lab1-local-3", timeout=60)
  '';
}
