# NixOS VM test: switchboard + image store + one supervisor on one machine, a job end to end
# (`nix build .#checks.x86_64-linux.end-to-end`). Written against the modules; it runs only
# where nixpkgs can be fetched (not on the development machine of this project).
{ self, pkgs }:
pkgs.testers.runNixOSTest {
  name = "paddock-end-to-end";
  nodes.machine = { pkgs, ... }: {
    imports = [ self.nixosModules.default ];
    environment.systemPackages = [ self.packages.${pkgs.stdenv.hostPlatform.system}.paddock ];
    services.paddock.switchboard = {
      enable = true;
      settings.data_dir = "/var/lib/paddock-switchboard";
    };
    services.paddock.imagestore.enable = true;
    services.paddock.supervisors.s1 = {
      # Written by the test script before the unit can start.
      tokenFile = "/var/lib/paddock-test/s1-token";
      settings = {
        switchboard_url = "http://127.0.0.1:8080";
        images.urls = [ "http://127.0.0.1:8081" ];
        driver.kind = "local";
      };
    };
  };
  testScript = ''
    machine.wait_for_unit("paddock-switchboard.service")
    machine.wait_for_open_port(8080)
    machine.wait_for_unit("paddock-imagestore.service")
    machine.wait_for_open_port(8081)
    # The first admin, straight in the database (as the unit's user), then a supervisor.
    admin = machine.succeed(
        "runuser -u paddock-switchboard -- paddock-switchboard user add admin --privilege admin "
        "--data-dir /var/lib/paddock-switchboard | tail -1"
    ).strip()
    env = f"PADDOCK_URL=http://127.0.0.1:8080 PADDOCK_TOKEN={admin}"
    token = machine.succeed(f"{env} paddock supervisor add s1 --site lab --tags board:demo | tail -1").strip()
    machine.succeed(f"mkdir -p /var/lib/paddock-test && echo {token} > /var/lib/paddock-test/s1-token")
    machine.succeed("systemctl restart paddock-supervisor-s1.service")
    machine.wait_until_succeeds(f"{env} paddock supervisor list --json | grep -q '\"connected\": true'")
    # An image written straight into the store the image store serves; a job that runs it.
    machine.succeed("printf '#!/bin/sh\\necho hello from the job\\n' > /tmp/hello.sh && chmod +x /tmp/hello.sh")
    image = machine.succeed(
        "paddock image import /tmp/hello.sh --label hello --store /var/lib/paddock-imagestore | tail -1"
    ).strip()
    job = machine.succeed(f"{env} paddock job enqueue {image} --tags board:demo").strip()
    # `watch` returns when the job terminates, 0 only for workload_finished_success.
    machine.succeed(f"{env} timeout 120 paddock job watch {job}")
  '';
}
