# Sourced by the CLI benchmark scripts: builds heph (release) into
# $WORK/bin/heph and puts the older heph to compare with at
# $WORK/bin/heph-before: the binary $BEFORE names, or a build of commit
# $BEFORE_REV in a temporary git worktree. Needs ROOT, WORK, BEFORE_REV and
# the caller's `say`.
build_heph_and_before() {
  say "building heph (cargo build --release -p heph-cli)"
  (cd "$ROOT" && cargo build --release -p heph-cli)
  local target_dir
  target_dir=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  cp "$target_dir/release/heph" "$WORK/bin/heph"
  if [[ -z ${BEFORE:-} ]]; then
    say "building the heph of $BEFORE_REV"
    git -C "$ROOT" worktree add --detach "$WORK/before-src" "$BEFORE_REV" >/dev/null
    (cd "$WORK/before-src" && CARGO_TARGET_DIR="$target_dir" cargo build --release -p heph-cli)
    cp "$target_dir/release/heph" "$WORK/bin/heph-before"
    git -C "$ROOT" worktree remove --force "$WORK/before-src"
    # The tree at HEAD again, for anything built after this script.
    (cd "$ROOT" && cargo build --release -p heph-cli >/dev/null 2>&1) || true
  else
    cp "$BEFORE" "$WORK/bin/heph-before"
  fi
}
