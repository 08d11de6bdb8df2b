# Loom: `make demo` and `make test` each work alone on a fresh Debian machine, as root.
SHELL := /bin/bash
OUT := out/bin
DOTNET := DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet

.PHONY: deps build test demo demo-cni bench fuzz clean package

deps:
	@scripts/deps.sh

build: deps
	$(MAKE) -C bpf
	$(DOTNET) build Loom.slnx -c Release -nologo -clp:ErrorsOnly
	$(DOTNET) publish src/Loom.Cni/Loom.Cni.csproj -c Release -nologo -o $(OUT) -clp:ErrorsOnly
	$(DOTNET) publish src/Loom.Cli/Loom.Cli.csproj -c Release -nologo -o $(OUT) -clp:ErrorsOnly

test: build
	@scripts/test.sh

demo: build
	@scripts/demo.sh

demo-cni: build
	@scripts/demo-cni.sh

# The CNI and services benches, the datapath bench (about 5 min; exit 3 means a configuration does not work yet, the
# others are measured and charted), then bench/charts/*.svg from the newest JSON of each kind (bench/README.md).
bench: build
	@bench/cni.sh
	@bench/services.sh
	@bench/datapath.sh || [ $$? -eq 3 ]
	@bench/agent.sh
	@bench/charts.sh

# out/pkg/loom_<version>_amd64.deb: loom, loom-cni, the BPF objects, the systemd unit (deploy/systemd/README.md).
package: build
	@scripts/package.sh

# Coverage-guided fuzzing of the parsers (afl++ and SharpFuzz, installed if missing); FUZZ_SECONDS per target (60).
fuzz:
	@tests/Fuzz/fuzz.sh

clean:
	rm -rf out TestResults src/*/bin src/*/obj tests/*/bin tests/*/obj tests/Fuzz/*/bin tests/Fuzz/*/obj bench/*/bin bench/*/obj
