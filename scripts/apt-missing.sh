# Sourced by the set-up and bundle scripts: installs those of the given Debian packages that are
# not installed yet (one apt-get run; nothing when all are there).
apt_install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "[setup] installing Debian packages: ${missing[*]}"
    # apt's own chatter (debconf notes and the like) only when it fails.
    local log
    log=$(mktemp)
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      echo "[setup] apt-get could not install: ${missing[*]}" >&2
      return 1
    fi
    rm -f "$log"
  fi
}
