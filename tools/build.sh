#!/usr/bin/env bash
# Builds the project's pinned external tools from Go source into .tools/.
#
#   tools/build.sh                    build every tool
#   tools/build.sh pulumi kwok        build only the named tools
#
# Tools: pulumi, kubernetes-provider, control-plane, kwok, random-standin.
# Each one is a Go module under tools/ whose go.mod and go.sum pin it.
#
# Output (with TOOLS_DIR unset, .tools/ at the repository root):
#   .tools/bin/pulumi                      Pulumi CLI v3.276.0
#   .tools/bin/pulumi-resource-kubernetes  Kubernetes provider plugin 4.25.0
#   .tools/bin/kube-apiserver              Kubernetes v1.37.2
#   .tools/bin/kube-controller-manager     Kubernetes v1.37.2
#   .tools/bin/kube-scheduler              Kubernetes v1.37.2
#   .tools/bin/etcd                        etcd v3.7.0
#   .tools/bin/kwok                        kwok v0.8.0
#   .tools/bin/pulumi-resource-random      stand-in built from tools/random-standin
#   .tools/kwok-stages/node/fast/node-initialize.yaml
#   .tools/kwok-stages/node/heartbeat/node-heartbeat.yaml
#   .tools/kwok-stages/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
#   .tools/kwok-stages/pod/fast/pod-{ready,complete,delete}.yaml
#
# Caching: a tool's key is the sha256 of every file in its module folder, its
# build recipe (versions, ldflags, build flags) and `go version`. Results live
# in .tools/store/<tool>-<key>/, and .tools/bin contains symlinks into it. An
# entry counts only once its stamp file exists, and it is built in a temporary
# folder that is renamed into place, so a killed build leaves no entry that
# looks complete. When the key changes, the tool is rebuilt and its older entries are
# deleted. Set TOOLS_DIR to keep the results elsewhere, for example in a folder
# that outlives a fresh clone.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_src="$repo_root/tools"
tools_dir="${TOOLS_DIR:-$repo_root/.tools}"
# Builds run in the module folders, so a relative TOOLS_DIR is made absolute.
if [[ "$tools_dir" != /* ]]; then
	tools_dir="$PWD/$tools_dir"
fi
store_dir="$tools_dir/store"
bin_dir="$tools_dir/bin"
tmp_dir="$tools_dir/tmp"

all_tools=(pulumi kubernetes-provider control-plane kwok random-standin)

# Versions. Each must match the pin in the tool's go.mod, which check_pin
# verifies before a build, because the ldflags below write them into the
# binaries.
pulumi_version=v3.276.0
kubernetes_provider_version=4.25.0
kubernetes_version=v1.37.2
etcd_version=v3.7.0
kwok_version=v0.8.0

# Static binaries, as the upstream releases of these tools are built.
export CGO_ENABLED=0
# A go.work file elsewhere in the repository must not change what gets built.
export GOWORK=off
# -mod=readonly makes a go.sum that is out of date fail the build instead of
# being rewritten.
go_build_flags=(-trimpath -mod=readonly)

pulumi_ldflags="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version"
kubernetes_provider_ldflags="-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$kubernetes_provider_version"
# Without these, kube-apiserver's discovery reports v0.0.0.
kubernetes_minor=${kubernetes_version#v1.}
kubernetes_minor=${kubernetes_minor%%.*}
kubernetes_ldflags="-X k8s.io/component-base/version.gitVersion=$kubernetes_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kubernetes_minor -X k8s.io/component-base/version.gitTreeState=clean"

# Seconds between "still building" lines, so that a CI log is not silent.
progress_interval=30

usage() {
	echo "usage: tools/build.sh [TOOL...]"
	echo "Builds the named tools (default: all) into $tools_dir."
	echo "Tools: ${all_tools[*]}"
}

now_ms() {
	date +%s%3N
}

format_seconds() {
	local ms=$1
	printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}

# Paths deleted when the script exits, and the build that is running, killed
# if the script is interrupted.
cleanup_paths=()
running_pid=

cleanup() {
	if [[ -n "$running_pid" ]] && kill -0 "$running_pid" 2>/dev/null; then
		kill "$running_pid" 2>/dev/null || true
		wait "$running_pid" 2>/dev/null || true
	fi
	local path
	for path in "${cleanup_paths[@]}"; do
		rm -rf "$path"
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and prints the elapsed time every
# progress_interval seconds until it ends. Returns the command's exit status.
run_with_progress() {
	local label=$1
	shift
	local start=$SECONDS
	local next=$progress_interval
	"$@" &
	running_pid=$!
	while kill -0 "$running_pid" 2>/dev/null; do
		sleep 1
		if ((SECONDS - start >= next)); then
			echo "  … still building $label, $((SECONDS - start)) s elapsed"
			next=$((next + progress_interval))
		fi
	done
	local status=0
	wait "$running_pid" || status=$?
	running_pid=
	return "$status"
}

# Builds one main package into a file, with progress output. The optional
# duration hint is for a person watching a build with an empty Go build cache.
go_build() {
	local label=$1 module_dir=$2 output=$3 ldflags=$4 package=$5 duration_hint=${6:-}
	echo "building $label (cold build${duration_hint:+, $duration_hint})…"
	local start
	start=$(now_ms)
	run_with_progress "$label" \
		env -C "$module_dir" go build "${go_build_flags[@]}" -ldflags "$ldflags" -o "$output" "$package"
	echo "  built $label in $(format_seconds $(($(now_ms) - start)))"
}

# Fails unless the module's build list selects the expected version, so the
# version written by -ldflags cannot drift from the go.mod pin.
check_pin() {
	local module_dir=$1 module=$2 expected=$3
	local actual
	actual=$(env -C "$module_dir" go list -mod=readonly -m -f '{{.Version}}' "$module")
	if [[ "$actual" != "$expected" ]]; then
		echo "error: ${module_dir#"$repo_root"/}/go.mod selects $module $actual, but tools/build.sh expects $expected. Change the pin and the version in tools/build.sh together." >&2
		return 1
	fi
}

module_dir_of() {
	local module_dir=$1 module=$2
	# Output of go mod download goes to stderr, so that only the folder name
	# reaches stdout.
	env -C "$module_dir" go mod download "$module" >&2
	env -C "$module_dir" go list -mod=readonly -m -f '{{.Dir}}' "$module"
}

# Recipe strings: everything about a build that is not in the module folder.
# A change to one of them changes that tool's cache key.

recipe_pulumi() {
	echo "pulumi $pulumi_version ldflags=$pulumi_ldflags"
}

recipe_kubernetes_provider() {
	echo "pulumi-resource-kubernetes $kubernetes_provider_version ldflags=$kubernetes_provider_ldflags schema-version=$kubernetes_provider_version"
}

recipe_control_plane() {
	echo "kubernetes $kubernetes_version etcd $etcd_version ldflags=$kubernetes_ldflags"
}

recipe_kwok() {
	echo "kwok $kwok_version stages=node/fast,node/heartbeat,node/heartbeat-with-lease,pod/fast"
}

recipe_random_standin() {
	echo "pulumi-resource-random stand-in"
}

# Build functions: each writes its results into the folder it is given.

build_pulumi() {
	local out=$1 module_dir="$tools_src/pulumi"
	check_pin "$module_dir" github.com/pulumi/pulumi/pkg/v3 "$pulumi_version"
	check_pin "$module_dir" github.com/pulumi/pulumi/sdk/v3 "$pulumi_version"
	go_build "pulumi $pulumi_version" "$module_dir" "$out/bin/pulumi" \
		"$pulumi_ldflags" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "several minutes"
}

build_kubernetes_provider() {
	local out=$1 module_dir="$tools_src/kubernetes-provider"
	local provider_module=github.com/pulumi/pulumi-kubernetes/provider/v4

	# main.go embeds JSON files that are generated from the provider module's
	# download, so the module is built from a copy that has them next to it.
	local work_dir
	work_dir=$(mktemp -d "$tmp_dir/kubernetes-provider.XXXXXX")
	cleanup_paths+=("$work_dir")
	cp "$module_dir/go.mod" "$module_dir/go.sum" "$module_dir/main.go" "$module_dir/gen.go" "$work_dir/"

	local provider_dir
	provider_dir=$(module_dir_of "$work_dir" "$provider_module")
	echo "generating the provider schema (version $kubernetes_provider_version) from $provider_module…"
	env -C "$work_dir" go run gen.go \
		-src "$provider_dir/cmd/pulumi-resource-kubernetes" -out . -version "$kubernetes_provider_version"

	go_build "pulumi-resource-kubernetes $kubernetes_provider_version" "$work_dir" \
		"$out/bin/pulumi-resource-kubernetes" "$kubernetes_provider_ldflags" . "several minutes"
}

build_control_plane() {
	local out=$1 module_dir="$tools_src/control-plane"
	check_pin "$module_dir" k8s.io/kubernetes "$kubernetes_version"
	check_pin "$module_dir" go.etcd.io/etcd/server/v3 "$etcd_version"

	# The builds share most packages, so after kube-apiserver the Go build
	# cache makes the others much faster.
	go_build "kube-apiserver $kubernetes_version" "$module_dir" "$out/bin/kube-apiserver" \
		"$kubernetes_ldflags" k8s.io/kubernetes/cmd/kube-apiserver "several minutes"
	go_build "kube-controller-manager $kubernetes_version" "$module_dir" "$out/bin/kube-controller-manager" \
		"$kubernetes_ldflags" k8s.io/kubernetes/cmd/kube-controller-manager "a minute or two"
	go_build "kube-scheduler $kubernetes_version" "$module_dir" "$out/bin/kube-scheduler" \
		"$kubernetes_ldflags" k8s.io/kubernetes/cmd/kube-scheduler
	# etcd's main package is the root of its server module. Its version is a
	# constant in go.etcd.io/etcd/api/v3/version, so it needs no ldflags.
	go_build "etcd $etcd_version" "$module_dir" "$out/bin/etcd" "" go.etcd.io/etcd/server/v3
}

build_kwok() {
	local out=$1 module_dir="$tools_src/kwok"
	check_pin "$module_dir" sigs.k8s.io/kwok "$kwok_version"
	# kwok's consts.Version already defaults to this release's version, so
	# it needs no ldflags.
	go_build "kwok $kwok_version" "$module_dir" "$out/bin/kwok" "" sigs.k8s.io/kwok/cmd/kwok "a minute or two"

	# kwok does not start without stage definitions (--config). Its module
	# ships them in kustomize folders, and only the stage YAML files are
	# copied from there.
	local stages=(node/fast node/heartbeat node/heartbeat-with-lease pod/fast)
	local kwok_dir stage file
	kwok_dir=$(module_dir_of "$module_dir" sigs.k8s.io/kwok)
	for stage in "${stages[@]}"; do
		mkdir -p "$out/kwok-stages/$stage"
		for file in "$kwok_dir/kustomize/stage/$stage"/*.yaml; do
			if [[ "$(basename "$file")" != kustomization.yaml ]]; then
				install -m 0644 "$file" "$out/kwok-stages/$stage/"
			fi
		done
	done
	echo "  copied kwok stage definitions: ${stages[*]}"
}

build_random_standin() {
	local out=$1 module_dir="$tools_src/random-standin"
	go_build "pulumi-resource-random stand-in" "$module_dir" "$out/bin/pulumi-resource-random" "" .
}

# Prints the cache key of a tool: a sha256 over the files in its module
# folder, its recipe and the Go toolchain.
tool_key() {
	local tool=$1 module_dir="$tools_src/$1"
	{
		echo "tool=$tool"
		"recipe_${tool//-/_}"
		echo "go_build_flags=${go_build_flags[*]} CGO_ENABLED=$CGO_ENABLED"
		env -C "$module_dir" go version
		env -C "$module_dir" go env GOOS GOARCH
		(cd "$module_dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -c1-16
}

# Points .tools/bin (and .tools/kwok-stages) at a store entry. Each symlink
# is replaced by a rename, so a reader never sees it missing.
link_entry() {
	local entry_name=$1
	local entry="$store_dir/$entry_name"
	local binary name
	for binary in "$entry"/bin/*; do
		name=$(basename "$binary")
		ln -sfn "../store/$entry_name/bin/$name" "$bin_dir/.$name.new"
		mv -Tf "$bin_dir/.$name.new" "$bin_dir/$name"
	done
	if [[ -d "$entry/kwok-stages" ]]; then
		ln -sfn "store/$entry_name/kwok-stages" "$tools_dir/.kwok-stages.new"
		mv -Tf "$tools_dir/.kwok-stages.new" "$tools_dir/kwok-stages"
	fi
}

summary=()

# Makes sure the store has a complete entry for the tool, building it if
# needed, and links it into .tools/bin.
ensure_tool() {
	local tool=$1
	local module_dir="$tools_src/$tool"
	local start
	start=$(now_ms)

	if [[ ! -d "$module_dir" ]]; then
		echo "skipping $tool: ${module_dir#"$repo_root"/} does not exist"
		summary+=("$(printf '%-20s skipped (no %s)' "$tool" "${module_dir#"$repo_root"/}")")
		return
	fi

	local key
	key=$(tool_key "$tool")
	local entry_name="$tool-$key"
	local entry="$store_dir/$entry_name"
	local status

	if [[ -f "$entry/.complete" ]]; then
		status=cached
	else
		# An entry without its stamp cannot come from this script's rename,
		# but one left by hand must not block the rename below.
		rm -rf "$entry"
		local staging
		staging=$(mktemp -d "$store_dir/.tmp-$entry_name.XXXXXX")
		cleanup_paths+=("$staging")
		# mktemp creates the folder with mode 0700.
		chmod 0755 "$staging"
		mkdir -p "$staging/bin"
		"build_${tool//-/_}" "$staging"
		# The stamp is written last: an entry is complete only once it exists.
		date -u +%Y-%m-%dT%H:%M:%SZ >"$staging/.complete"
		mv -T "$staging" "$entry"
		status=built
	fi

	link_entry "$entry_name"

	# Older entries of this tool are no longer linked from .tools/bin. The 16
	# wildcards match the key's length, so no other tool's entries match.
	local old
	for old in "$store_dir/$tool"-????????????????; do
		if [[ -d "$old" && "$old" != "$entry" ]]; then
			rm -rf "$old"
		fi
	done

	summary+=("$(printf '%-20s %-6s %s' "$tool" "$status" "$(format_seconds $(($(now_ms) - start)))")")
}

main() {
	local tools=("$@")
	local tool candidate known
	if [[ ${#tools[@]} -eq 0 ]]; then
		tools=("${all_tools[@]}")
	fi
	for tool in "${tools[@]}"; do
		if [[ "$tool" == -h || "$tool" == --help ]]; then
			usage
			return 0
		fi
		known=false
		for candidate in "${all_tools[@]}"; do
			if [[ "$tool" == "$candidate" ]]; then
				known=true
			fi
		done
		if [[ "$known" != true ]]; then
			echo "error: unknown tool '$tool'" >&2
			usage >&2
			return 2
		fi
	done

	if ! command -v go >/dev/null; then
		echo "error: go not found in PATH. tools/build.sh builds every tool with the Go toolchain." >&2
		return 1
	fi

	mkdir -p "$store_dir" "$bin_dir" "$tmp_dir"

	# One run at a time per TOOLS_DIR, so two runs never build or rename the
	# same entry, and leftovers of a killed run can be deleted safely.
	exec 9>"$tools_dir/.lock"
	if ! flock -n 9; then
		echo "waiting for another tools/build.sh run on $tools_dir to finish…"
		flock 9
	fi
	rm -rf "$store_dir"/.tmp-* "${tmp_dir:?}"/*

	for tool in "${tools[@]}"; do
		ensure_tool "$tool"
	done

	echo
	echo "tools in ${bin_dir#"$repo_root"/}:"
	local line
	for line in "${summary[@]}"; do
		echo "  $line"
	done
}

main "$@"
