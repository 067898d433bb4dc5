#!/usr/bin/env bash
# The logic of the mcplock GitHub Action (action.yml). Every step of the action runs
#
#   bash "$GITHUB_ACTION_PATH/action/mcplock-action.sh" STEP
#
# with STEP one of setup, verify, diff, policy, summary, gate. Inputs arrive as
# MCPLOCK_ACTION_* environment variables set by the step's `env:` map, never spliced into shell
# source. State between steps lives in a directory under $RUNNER_TEMP/mcplock-action/ that the
# setup step creates and hands on as its `state-dir` output.
#
# verify fails its own step when the signature does not hold (nothing after it runs but the
# summary and the gate); diff and policy record their exit codes and never fail their steps, so
# the SARIF uploads still run; the gate (last step) fails the job from the recorded codes.
#
# Written for bash 3.2 too (macOS runners): no mapfile, no associative arrays, and no bare
# "${array[@]}" of an array that may be empty under `set -u`.
set -euo pipefail

# --- small helpers --------------------------------------------------------------------------

# Escapes a workflow command's message (https://github.com/actions/toolkit, issue-command).
escape_data() {
  local s=$1
  s=${s//'%'/%25}
  s=${s//$'\r'/%0D}
  s=${s//$'\n'/%0A}
  printf '%s' "$s"
}

# To stderr, which the runner reads for workflow commands too: a helper whose stdout is being
# captured ($(...)) can still annotate.
annotate() { # LEVEL MESSAGE (LEVEL: error, warning, notice)
  printf '::%s title=mcplock::%s\n' "$1" "$(escape_data "$2")" >&2
}

# Prints a message as an error annotation and exits with CODE (default 2: input error).
die() {
  annotate error "$1"
  exit "${2:-2}"
}

output() { # NAME VALUE: a step output (values here are one line: codes and paths)
  case "$2" in
    *$'\n'* | *$'\r'*) die "internal: output $1 would span lines" ;;
  esac
  printf '%s=%s\n' "$1" "$2" >>"${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set (not running in GitHub Actions?)}"
}

random_token() {
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# Prints FILE to the log with workflow commands turned off, so a line of mcplock's output that
# quotes a server (a name, a description) can never be taken as a command such as ::add-mask::.
show_untrusted() { # FILE TITLE
  [ -s "$1" ] || return 0
  local token
  token=$(random_token)
  echo "::group::$2"
  echo "::stop-commands::$token"
  cat -- "$1"
  if [ -n "$(tail -c 1 -- "$1")" ]; then echo; fi
  echo "::$token::"
  echo "::endgroup::"
}

state_dir() {
  local dir=${MCPLOCK_ACTION_STATE:-}
  [ -n "$dir" ] || die "the setup step did not run or failed: no state directory"
  [ -d "$dir" ] || die "the state directory $dir is missing"
  printf '%s' "$dir"
}

get() { # KEY: a recorded value ("" when absent)
  if [ -f "$STATE/$1" ]; then cat -- "$STATE/$1"; fi
}

put() { # KEY VALUE
  printf '%s' "$2" >"$STATE/$1"
}

# Records a step's result: the state file the gate reads and the step's exit-code output.
record() { # STEP VALUE
  put "$1.exit" "$2"
  output exit-code "$2"
}

lower() {
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]'
}

# Splits $1 on spaces, tabs and newlines into the global array WORDS (no globbing).
split_words() {
  WORDS=()
  local line parts
  while IFS= read -r line || [ -n "$line" ]; do
    parts=()
    IFS=$' \t' read -r -a parts <<<"$line" || true
    WORDS+=(${parts[@]+"${parts[@]}"})
  done <<<"$(printf '%s' "$1")"
}

# The path of a lockfile, key, root or policy inside the repository as git names it from the
# working directory ("./" + relative path), or empty for an absolute path.
repo_relative() {
  case "$1" in
    /*) printf '' ;;
    ./*) printf '%s' "$1" ;;
    *) printf './%s' "$1" ;;
  esac
}

# Prints the path to read a trusted input (key, trusted root, policy) from. With trust-from
# base a relative path is read from the base commit into the state directory, so the change
# under review cannot replace the key or loosen the policy that judges it.
trusted_file() { # PATH WHAT
  local path=$1 what=$2 rel dest
  rel=$(repo_relative "$path")
  if [ "$(get settings.trust-from)" = base ] && [ -n "$rel" ]; then
    local base
    base=$(get settings.base-sha)
    if ! git cat-file -e "$base:$rel" 2>/dev/null; then
      die "the $what $path does not exist at the base commit $base, and trust-from is base: a change may not bring the $what that judges it (set trust-from: workspace for the change that introduces it)"
    fi
    mkdir -p "$STATE/trusted"
    dest="$(mktemp -d "$STATE/trusted/XXXXXX")/$(basename -- "$path")"
    git show "$base:$rel" >"$dest" || die "the $what $path could not be read from the base commit $base"
    printf '%s' "$dest"
  else
    [ -f "$path" ] || die "the $what $path does not exist"
    printf '%s' "$path"
  fi
}

# Runs mcplock; stdout to OUT, stderr to ERR; sets CODE (never aborts the script).
run_mcplock() { # OUT ERR ARGS...
  local out=$1 err=$2
  shift 2
  CODE=0
  "$(get mcplock)" "$@" >"$out" 2>"$err" || CODE=$?
}

# --- setup ----------------------------------------------------------------------------------

step_setup() {
  local fail_on=${MCPLOCK_ACTION_FAIL_ON:-moderate} compare=${MCPLOCK_ACTION_COMPARE:-auto}
  local trust_from=${MCPLOCK_ACTION_TRUST_FROM:-auto} allow_unsigned
  local upload_sarif lockfile=${MCPLOCK_ACTION_LOCKFILE:-mcp-lock.json}
  allow_unsigned=$(lower "${MCPLOCK_ACTION_ALLOW_UNSIGNED:-false}")
  upload_sarif=$(lower "${MCPLOCK_ACTION_UPLOAD_SARIF:-true}")

  [ -n "${RUNNER_TEMP:-}" ] || die "RUNNER_TEMP is not set (not running in GitHub Actions?)"
  mkdir -p "$RUNNER_TEMP/mcplock-action"
  STATE=$(mktemp -d "$RUNNER_TEMP/mcplock-action/run.XXXXXX")
  output state-dir "$STATE"

  case "$fail_on" in critical | moderate | info | never) ;;
    *) die "fail-on must be critical, moderate, info or never, not \"$fail_on\"" ;; esac
  case "$compare" in auto | base | live | none) ;;
    *) die "compare must be auto, base, live or none, not \"$compare\"" ;; esac
  case "$trust_from" in auto | base | workspace) ;;
    *) die "trust-from must be auto, base or workspace, not \"$trust_from\"" ;; esac
  case "$allow_unsigned" in true | false) ;;
    *) die "allow-unsigned must be true or false, not \"$allow_unsigned\"" ;; esac
  case "$upload_sarif" in true | false) ;;
    *) die "upload-sarif must be true or false, not \"$upload_sarif\"" ;; esac
  [ -n "$lockfile" ] || die "lockfile is empty"
  case "$lockfile" in -*) die "lockfile may not start with -: write ./$lockfile" ;; esac

  # The base commit: needed to compare against it and to read trusted files from it.
  local base_ref=${MCPLOCK_ACTION_BASE_REF:-}
  if [ -z "$base_ref" ] && [ -n "${GITHUB_BASE_REF:-}" ]; then
    base_ref="origin/$GITHUB_BASE_REF"
  fi
  # Never an option to git (git fetch origin --upload-pack=... would run a command).
  case "$base_ref" in -*) die "base-ref may not start with -" ;; esac
  if [ "$compare" = auto ]; then
    if [ -n "$base_ref" ]; then compare=base; else compare=none; fi
  fi
  if [ "$trust_from" = auto ]; then
    if [ "$compare" = base ]; then trust_from=base; else trust_from=workspace; fi
  fi
  local base_sha=''
  if [ "$compare" = base ] || [ "$trust_from" = base ]; then
    [ -n "$base_ref" ] || die "compare: base and trust-from: base need a base ref: set base-ref (on pull_request events it defaults to the base commit)"
    base_sha=$(resolve_commit "$base_ref")
    if [ "$compare" = base ] && [ -z "$(repo_relative "$lockfile")" ]; then
      die "compare: base needs the lockfile as a path relative to the workspace, not $lockfile"
    fi
  fi

  put settings.fail-on "$fail_on"
  put settings.compare "$compare"
  put settings.trust-from "$trust_from"
  put settings.allow-unsigned "$allow_unsigned"
  put settings.upload-sarif "$upload_sarif"
  put settings.lockfile "$lockfile"
  put settings.base-ref "$base_ref"
  put settings.base-sha "$base_sha"

  local bin
  bin=$(find_mcplock)
  put mcplock "$bin"
  output mcplock-path "$bin"
  echo "mcplock: $("$bin" --version)"
  local against=''
  if [ -n "$base_sha" ]; then
    against=" against $base_ref"
    if [ "$base_ref" != "$base_sha" ]; then against="$against ($base_sha)"; fi
  fi
  echo "lockfile $lockfile; compare $compare$against; trust-from $trust_from; fail-on $fail_on"
  put setup.ok yes
}

# Prints the full commit id of REF, fetching it (depth 1) from origin when it is not here
# (actions/checkout fetches one commit by default).
resolve_commit() { # REF
  local ref=$1 sha
  if sha=$(git rev-parse --verify --quiet "$ref^{commit}"); then
    printf '%s' "$sha"
    return
  fi
  echo "fetching $ref from origin (not in the local clone)" >&2
  case "$ref" in
    origin/*)
      git fetch --no-tags --quiet --depth=1 origin "+refs/heads/${ref#origin/}:refs/remotes/$ref" >&2 || true
      ;;
    *)
      git fetch --no-tags --quiet --depth=1 origin "$ref" >&2 || true
      ;;
  esac
  if sha=$(git rev-parse --verify --quiet "$ref^{commit}"); then
    printf '%s' "$sha"
    return
  fi
  die "the base ref $ref is not a commit here and could not be fetched from origin (check out with fetch-depth: 0, or set base-ref)"
}

# The digest of the mcplock source this action runs (its Cargo.toml, Cargo.lock and src/):
# what a cached build is keyed by and held to.
source_digest() {
  (cd "$GITHUB_ACTION_PATH" && find Cargo.toml Cargo.lock src -type f -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
}

# --- key ------------------------------------------------------------------------------------

# The cache key and directory of the mcplock build: by runner, and by the source's digest (the
# commit you pinned, by content), so another commit never reuses a build.
step_key() {
  [ -n "${RUNNER_TEMP:-}" ] || die "RUNNER_TEMP is not set (not running in GitHub Actions?)"
  [ -n "${GITHUB_ACTION_PATH:-}" ] || die "GITHUB_ACTION_PATH is not set"
  output cache-key "mcplock-${RUNNER_OS:-os}-${RUNNER_ARCH:-arch}-$(source_digest)"
  output cache-dir "$RUNNER_TEMP/mcplock-cache"
}

find_mcplock() {
  local given=${MCPLOCK_ACTION_MCPLOCK_PATH:-}
  if [ -n "$given" ]; then
    [ -f "$given" ] && [ -x "$given" ] || die "mcplock-path $given is not an executable file"
    printf '%s' "$given"
    return
  fi
  [ -n "${GITHUB_ACTION_PATH:-}" ] || die "GITHUB_ACTION_PATH is not set"
  # A build restored from the cache (or made by an earlier use of this action in the job) is
  # used only when it is of this very source and is the binary that was recorded.
  local root="$RUNNER_TEMP/mcplock-cache" digest
  digest=$(source_digest)
  if [ -e "$root/bin/mcplock" ]; then
    if [ "$(cat "$root/source-digest" 2>/dev/null)" = "$digest" ] &&
      [ "$(sha256sum "$root/bin/mcplock" | cut -c1-64)" = "$(cat "$root/binary-sha256" 2>/dev/null)" ]; then
      echo "mcplock: using the cached build of this source ($digest)" >&2
      printf '%s' "$root/bin/mcplock"
      return
    fi
    echo "::warning::the cached mcplock build is not the one recorded for this source; building it again" >&2
    rm -rf "$root"
  fi
  command -v cargo >/dev/null || die "cargo is not on PATH: install a Rust toolchain first (or pass mcplock-path)"
  echo "::group::cargo install mcplock from $GITHUB_ACTION_PATH" >&2
  CARGO_TARGET_DIR="$RUNNER_TEMP/mcplock-target" \
    cargo install --locked --path "$GITHUB_ACTION_PATH" --bin mcplock --root "$root" >&2 ||
    die "cargo install of mcplock failed (see the log above)"
  echo "::endgroup::" >&2
  printf '%s' "$digest" >"$root/source-digest"
  sha256sum "$root/bin/mcplock" | cut -c1-64 >"$root/binary-sha256"
  printf '%s' "$root/bin/mcplock"
}

# --- verify ---------------------------------------------------------------------------------

step_verify() {
  STATE=$(state_dir)
  local lockfile key=${MCPLOCK_ACTION_KEY:-} bundle=${MCPLOCK_ACTION_BUNDLE:-}
  local identity=${MCPLOCK_ACTION_IDENTITY:-} identity_re=${MCPLOCK_ACTION_IDENTITY_REGEXP:-}
  local issuer=${MCPLOCK_ACTION_ISSUER:-} root=${MCPLOCK_ACTION_TRUSTED_ROOT:-}
  local signature=${MCPLOCK_ACTION_SIGNATURE:-} trusted
  lockfile=$(get settings.lockfile)
  local args=()
  if [ -n "$key" ] && [ -n "$bundle" ]; then
    fail_verify 2 "give key or bundle, not both"
  elif [ -n "$bundle" ]; then
    if [ -n "$identity" ] && [ -n "$identity_re" ]; then
      fail_verify 2 "give identity or identity-regexp, not both"
    elif [ -z "$identity" ] && [ -z "$identity_re" ]; then
      fail_verify 2 "a Sigstore bundle needs identity or identity-regexp: there is no \"any signer\""
    elif [ -z "$issuer" ]; then
      fail_verify 2 "a Sigstore bundle needs issuer (for GitHub Actions: https://token.actions.githubusercontent.com)"
    fi
    args=(--bundle "$bundle" --issuer "$issuer")
    put verify.note "the Sigstore bundle $bundle, issuer $issuer, identity ${identity:-matching $identity_re}"
    if [ -n "$identity" ]; then args+=(--identity "$identity"); fi
    if [ -n "$identity_re" ]; then args+=(--identity-regexp "$identity_re"); fi
    if [ -n "$root" ]; then
      trusted=$(trusted_file "$root" "trusted root") || fail_verify 2 "the trusted root could not be read"
      args+=(--trusted-root "$trusted")
    fi
  elif [ -n "$key" ]; then
    trusted=$(trusted_file "$key" key) || fail_verify 2 "the key could not be read"
    args=(--key "$trusted")
    if [ "$trusted" != "$key" ]; then
      put verify.note "the key $key as of the base commit $(get settings.base-sha)"
    else
      put verify.note "the key $key"
    fi
    if [ -n "$signature" ]; then args+=(--signature "$signature"); fi
  elif [ "$(get settings.allow-unsigned)" = true ]; then
    put verify.note "not verified: no key or bundle given, and allow-unsigned is true"
    : >"$STATE/verify-args"
    annotate warning "the lockfile's signature is not verified (allow-unsigned: true)"
    record verify skipped
    return 0
  else
    fail_verify 2 "no key or bundle given: the lockfile's signature must be verified (set key, or bundle with identity and issuer; allow-unsigned: true skips verification)"
  fi

  # The same checks gate a live diff's relaunch (NUL-separated arguments).
  printf '%s\0' "${args[@]}" >"$STATE/verify-args"
  run_mcplock "$STATE/verify.out" "$STATE/verify.err" verify "$lockfile" "${args[@]}"
  show_untrusted "$STATE/verify.out" "mcplock verify"
  show_untrusted "$STATE/verify.err" "mcplock verify (stderr)"
  record verify "$CODE"
  if [ "$CODE" -ne 0 ]; then
    annotate error "mcplock verify failed (exit $CODE): $(first_line "$STATE/verify.err")"
    exit 1
  fi
}

fail_verify() { # CODE MESSAGE
  put verify.note "$2"
  record verify "$1"
  die "$2" 1
}

require_verified() { # STEP
  case "$(get verify.exit)" in
    0 | skipped) ;;
    *)
      record "$1" not-run
      die "$1 not run: the lockfile's signature was not verified" 1
      ;;
  esac
}

# --- diff -----------------------------------------------------------------------------------

step_diff() {
  STATE=$(state_dir)
  require_verified diff
  local lockfile compare fail_on
  lockfile=$(get settings.lockfile)
  compare=$(get settings.compare)
  fail_on=$(get settings.fail-on)
  case "$compare" in
    none)
      put diff.note "no comparison (compare: none, or no base ref)"
      record diff skipped
      return 0
      ;;
    base) diff_base "$lockfile" "$fail_on" ;;
    live) diff_live "$lockfile" "$fail_on" ;;
  esac
}

diff_base() { # LOCKFILE FAIL_ON
  local lockfile=$1 fail_on=$2 base_sha rel old="$STATE/base-lockfile.json"
  base_sha=$(get settings.base-sha)
  rel=$(repo_relative "$lockfile")
  if git cat-file -e "$base_sha:$rel" 2>/dev/null; then
    git show "$base_sha:$rel" >"$old"
    put diff.note "$lockfile at the base commit $base_sha against the working tree"
  else
    # A lockfile new in this change: every server in it is reported as added.
    printf '{"lockfileVersion": 1, "servers": {}}\n' >"$old"
    put diff.note "$lockfile does not exist at the base commit $base_sha: every server in it is new"
  fi

  sarif_and_markdown diff "mcplock diff" diff "$old" "$lockfile" --fail-on "$fail_on"
}

# Runs `mcplock ARGS...` as SARIF and as Markdown into $STATE/NAME.sarif and $STATE/NAME.md,
# shows what they print (untrusted text), sets the step's file outputs and records the result.
sarif_and_markdown() { # NAME LABEL ARGS...
  local name=$1 label=$2 sarif_code
  shift 2
  run_mcplock "$STATE/$name.sarif" "$STATE/$name-sarif.err" "$@" --format sarif
  sarif_code=$CODE
  run_mcplock "$STATE/$name.md" "$STATE/$name.err" "$@" --format markdown
  show_untrusted "$STATE/$name.md" "$label"
  show_untrusted "$STATE/$name.err" "$label (stderr)"
  show_untrusted "$STATE/$name-sarif.err" "$label --format sarif (stderr)"
  if [ "$sarif_code" -le 1 ] && [ -s "$STATE/$name.sarif" ]; then
    output sarif-file "$STATE/$name.sarif"
  fi
  if [ "$CODE" -le 1 ] && [ -s "$STATE/$name.md" ]; then
    output markdown-file "$STATE/$name.md"
  fi
  finish_tool "$name" "$sarif_code" "$CODE"
}

diff_live() { # LOCKFILE FAIL_ON
  local lockfile=$1 fail_on=$2 args=() arg
  if [ "$(get verify.exit)" != 0 ]; then
    # A relaunch runs the commands the lockfile records: never from an unverified lockfile.
    put diff.note "compare: live relaunches the commands $lockfile records, so it needs a verified lockfile (key or bundle), whatever allow-unsigned says"
    get diff.note >"$STATE/diff.err"
    finish_tool diff 2 2
    return 0
  fi
  while IFS= read -r -d '' arg; do args+=("$arg"); done <"$STATE/verify-args"
  put diff.note "every server in $lockfile relaunched and compared with its lock"
  # One relaunch only (it runs the locked commands, and a second could see something else):
  # the Markdown report; no SARIF for a live comparison.
  run_mcplock "$STATE/diff.md" "$STATE/diff.err" \
    diff --lockfile "$lockfile" ${args[@]+"${args[@]}"} --fail-on "$fail_on" --format markdown
  show_untrusted "$STATE/diff.md" "mcplock diff (live)"
  show_untrusted "$STATE/diff.err" "mcplock diff (stderr)"
  if [ "$CODE" -le 1 ] && [ -s "$STATE/diff.md" ]; then
    output markdown-file "$STATE/diff.md"
  fi
  finish_tool diff "$CODE" "$CODE"
}

# Records a tool's exit code from its two runs (SARIF and Markdown over the same input): the
# worse of the two, so a run that failed in one format is never recorded as clean. The stderr
# of the run that failed is kept as TOOL.error for the summary.
finish_tool() { # TOOL SARIF_CODE MARKDOWN_CODE
  local code=$2 error="$STATE/$1.err"
  if [ "$3" -gt "$code" ]; then code=$3; fi
  if [ "$2" -ne "$3" ]; then
    annotate warning "mcplock $1 exited $2 with --format sarif and $3 with --format markdown"
  fi
  if [ "$2" -gt "$3" ] && [ -f "$STATE/$1-sarif.err" ]; then error="$STATE/$1-sarif.err"; fi
  if [ -f "$error" ]; then cp -- "$error" "$STATE/$1.error"; fi
  record "$1" "$code"
  case "$code" in
    0) ;;
    1) annotate warning "mcplock $1 found something (exit 1): see the job summary" ;;
    *) annotate error "mcplock $1 could not run (exit $code): $(first_line "$STATE/$1.error")" ;;
  esac
}

first_line() { # FILE: its first non-empty line, if any
  if [ -f "$1" ]; then grep -m 1 -v '^[[:space:]]*$' -- "$1" || true; fi
}

# --- policy ---------------------------------------------------------------------------------

step_policy() {
  STATE=$(state_dir)
  require_verified policy
  local lockfile args=() word trusted
  lockfile=$(get settings.lockfile)
  split_words "${MCPLOCK_ACTION_POLICY:-}"
  for word in ${WORDS[@]+"${WORDS[@]}"}; do
    if ! trusted=$(trusted_file "$word" "policy"); then
      put policy.note "the policy $word could not be read"
      record policy 2
      return 0
    fi
    args+=(--policy "$trusted")
  done
  split_words "${MCPLOCK_ACTION_PRESET:-}"
  for word in ${WORDS[@]+"${WORDS[@]}"}; do
    args+=(--preset "$word")
  done
  if [ "${#args[@]}" -eq 0 ]; then
    put policy.note "no policy or preset given"
    record policy skipped
    return 0
  fi
  put policy.note "$lockfile"
  sarif_and_markdown policy "mcplock policy check" \
    policy check --lockfile "$lockfile" "${args[@]}"
}

# --- the verdict, shared by summary and gate ------------------------------------------------

# Sets REASONS (why the job fails; empty when it passes). Fail closed: a step that recorded
# nothing did not finish, and that fails the job too.
verdict() {
  REASONS=()
  local fail_on verify diff policy
  fail_on=$(get settings.fail-on)
  verify=$(get verify.exit)
  diff=$(get diff.exit)
  policy=$(get policy.exit)
  if [ "$(get setup.ok)" != yes ]; then
    REASONS+=("setup failed: see the log of the step \"Set up mcplock\"")
    return 0
  fi
  case "$verify" in
    0 | skipped) ;;
    '') REASONS+=("verify did not finish") ;;
    1) REASONS+=("verify: the signature does not hold (exit 1)") ;;
    *) REASONS+=("verify could not run (exit $verify)") ;;
  esac
  case "$verify" in 0 | skipped) ;; *) return 0 ;; esac # nothing else ran on an unverified lockfile
  case "$diff" in
    0 | skipped) ;;
    '') REASONS+=("diff did not finish") ;;
    1) REASONS+=("diff: drift at or above fail-on $fail_on (exit 1)") ;;
    *) REASONS+=("diff could not run (exit $diff)") ;;
  esac
  case "$policy" in
    0 | skipped) ;;
    '') REASONS+=("policy check did not finish") ;;
    1) if [ "$fail_on" != never ]; then REASONS+=("policy: a rule failed (exit 1)"); fi ;;
    *) REASONS+=("policy check could not run (exit $policy)") ;;
  esac
}

# One table cell for a tool's recorded result.
cell() { # TOOL
  local code note
  code=$(get "$1.exit")
  note=$(get "$1.note")
  case "$code" in
    0) printf 'clean (exit 0)' ;;
    skipped) printf 'skipped: %s' "$(md_text "$note")" ;;
    not-run) printf 'not run' ;;
    '') case "$(get verify.exit)" in
      0 | skipped) printf '**did not finish**' ;;
      *) printf 'not run: the signature was not verified' ;;
    esac ;;
    1) if [ "$1" = policy ] && [ "$(get settings.fail-on)" = never ]; then
      printf 'rule failed (exit 1), reported only (fail-on never)'
    else
      printf '**failed** (exit 1)'
    fi ;;
    *) printf '**error** (exit %s)' "$code" ;;
  esac
}

# Escapes text for a Markdown table cell or paragraph (paths and notes we wrote).
md_text() {
  printf '%s' "$1" | sed -e 's/[\\`*_|<>[]/\\&/g' -e 's/]/\\]/g' | tr '\n' ' '
}

# A backtick fence longer than any backtick run in FILE.
fence_for() { # FILE
  local n
  n=$(LC_ALL=C grep -oE '`+' -- "$1" 2>/dev/null | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }')
  n=$((n + 1))
  if [ "$n" -lt 3 ]; then n=3; fi
  printf '%*s' "$n" '' | tr ' ' '`'
}

SUMMARY_LIMIT=300000

# Appends FILE (Markdown mcplock wrote, its untrusted text escaped by mcplock), cut to a size
# a job summary can hold (1 MiB per step).
summary_markdown() { # FILE
  [ -s "$1" ] || return 0
  head -c "$SUMMARY_LIMIT" -- "$1"
  echo
  if [ "$(wc -c <"$1" | tr -d ' ')" -gt "$SUMMARY_LIMIT" ]; then
    printf '\n*(cut at %s bytes; the whole report is in the log)*\n' "$SUMMARY_LIMIT"
  fi
  echo
}

summary_code() { # FILE...: mcplock's human output, fenced
  local file fence
  for file in "$@"; do
    [ -s "$file" ] || continue
    fence=$(fence_for "$file")
    echo "$fence"
    head -c "$SUMMARY_LIMIT" -- "$file"
    if [ -n "$(tail -c 1 -- "$file")" ]; then echo; fi
    echo "$fence"
  done
}

step_summary() {
  local out=${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set}
  if [ -z "${MCPLOCK_ACTION_STATE:-}" ] || [ ! -d "${MCPLOCK_ACTION_STATE}" ]; then
    printf '## mcplock: failed\n\nmcplock could not be set up: see the log of the step "Set up mcplock".\n' >>"$out"
    return 0
  fi
  STATE=$MCPLOCK_ACTION_STATE
  verdict
  if [ "$(get setup.ok)" != yes ]; then
    printf '## mcplock: failed\n\nmcplock could not be set up: see the log of the step "Set up mcplock".\n' >>"$out"
    return 0
  fi
  {
    if [ "${#REASONS[@]}" -eq 0 ]; then
      echo "## mcplock: passed"
    else
      echo "## mcplock: failed"
      echo
      local reason
      for reason in "${REASONS[@]}"; do echo "- $(md_text "$reason")"; done
    fi
    echo
    echo "Lockfile \`$(get settings.lockfile | tr -d '`')\`, fail-on \`$(get settings.fail-on)\`."
    echo
    echo "| check | result |"
    echo "|---|---|"
    echo "| verify | $(cell verify) |"
    echo "| diff | $(cell diff) |"
    echo "| policy | $(cell policy) |"
    echo
    if [ -s "$STATE/verify.out" ] || [ -s "$STATE/verify.err" ]; then
      echo "### mcplock verify"
      echo
      if [ -n "$(get verify.note)" ]; then
        echo "Checked with $(md_text "$(get verify.note)")."
        echo
      fi
      summary_code "$STATE/verify.out" "$STATE/verify.err"
      echo
    elif [ -n "$(get verify.note)" ]; then
      echo "### mcplock verify"
      echo
      md_text "$(get verify.note)"
      echo
      echo
    fi
    if [ -n "$(get diff.exit)" ] && [ "$(get diff.exit)" != skipped ]; then
      md_text "$(get diff.note)"
      echo
      echo
      if [ -s "$STATE/diff.md" ] && [ "$(get diff.exit)" -le 1 ] 2>/dev/null; then
        summary_markdown "$STATE/diff.md"
      else
        echo "### mcplock diff"
        echo
        summary_code "$STATE/diff.error"
        echo
      fi
    fi
    if [ -n "$(get policy.exit)" ] && [ "$(get policy.exit)" != skipped ]; then
      if [ -s "$STATE/policy.md" ] && [ "$(get policy.exit)" -le 1 ] 2>/dev/null; then
        summary_markdown "$STATE/policy.md"
      else
        echo "### mcplock policy check"
        echo
        summary_code "$STATE/policy.error"
        echo
      fi
    fi
  } >>"$out"
}

# --- gate -----------------------------------------------------------------------------------

shown() { # KEY: a recorded exit code, or "not run"
  local value
  value=$(get "$1")
  printf '%s' "${value:-not run}"
}

codes() {
  printf 'verify %s, diff %s, policy %s; fail-on %s' "$(shown verify.exit)" \
    "$(shown diff.exit)" "$(shown policy.exit)" "$(get settings.fail-on)"
}

step_gate() {
  if [ -z "${MCPLOCK_ACTION_STATE:-}" ] || [ ! -d "${MCPLOCK_ACTION_STATE}" ]; then
    output result failed
    die "mcplock could not be set up: see the step \"Set up mcplock\"" 1
  fi
  STATE=$MCPLOCK_ACTION_STATE
  verdict
  if [ "${#REASONS[@]}" -eq 0 ]; then
    output result passed
    echo "mcplock: every check passed ($(codes))"
    return 0
  fi
  output result failed
  local reason
  for reason in "${REASONS[@]}"; do annotate error "$reason"; done
  echo "mcplock: failed ($(codes))"
  exit 1
}

# --- main -----------------------------------------------------------------------------------

STATE=''
CODE=0
WORDS=()
REASONS=()
case "${1:-}" in
  key) step_key ;;
  setup) step_setup ;;
  verify) step_verify ;;
  diff) step_diff ;;
  policy) step_policy ;;
  summary) step_summary ;;
  gate) step_gate ;;
  *)
    echo "usage: mcplock-action.sh key|setup|verify|diff|policy|summary|gate" >&2
    exit 2
    ;;
esac
