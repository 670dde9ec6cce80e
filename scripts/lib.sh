# Shared by scripts/app, scripts/test and .ci/run. Source it; it defines functions only.

# What the desktop build links against (Debian 12 / Ubuntu names).
BUILD_PACKAGES=(
  build-essential pkg-config file libssl-dev libdbus-1-dev
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev
)
# What the tests need on top: a headless X server, WebDriver for WebKitGTK, a D-Bus session,
# a real Secret Service (gnome-keyring) to keep keys in, a notification service (dunst), and a
# window manager (openbox, wmctrl) for the close-to-tray test; busctl (systemd) to click the
# tray menu through the tests' own tray host.
TEST_PACKAGES=(
  webkit2gtk-driver xvfb xauth dbus dbus-x11 gnome-keyring libsecret-tools keyutils
  iproute2 nftables dunst openbox wmctrl systemd
)

# ensure_packages PKG... : installs the missing ones when root, else prints the exact command.
ensure_packages() {
  if ! command -v dpkg >/dev/null 2>&1; then
    echo "note: not a Debian-like system; make sure these (or your distribution's equivalents) are installed: $*" >&2
    return 0
  fi
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing system packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "These system packages are missing. Install them with:" >&2
    echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
}

# ensure_ui_deps: runs `npm ci` in ui/ unless node_modules was installed from this exact lockfile.
ensure_ui_deps() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing: install Node.js 20.19 or newer (it includes npm)." >&2
    exit 1
  fi
  local stamp=ui/node_modules/.installed-from-package-lock.json
  if ! cmp -s ui/package-lock.json "$stamp"; then
    echo "== npm ci (ui/)"
    npm ci --prefix ui --no-audit --no-fund
    cp ui/package-lock.json "$stamp"
  fi
}

# bus_name_owner_pid NAME : the pid of the session-bus connection that owns NAME, or nothing.
bus_name_owner_pid() {
  local owner
  owner=$(dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.GetNameOwner "string:$1" 2>/dev/null | tr -d ' ') || return 0
  [ -n "$owner" ] || return 0
  dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.GetConnectionUnixProcessID "string:$owner" 2>/dev/null | awk '{print $2}'
}

# ensure_secret_service_is_ours DATA_HOME : the Secret Service name must belong to the unlocked
# gnome-keyring-daemon this session started (whose XDG_DATA_HOME is DATA_HOME). Once, D-Bus
# activated a second daemon for org.freedesktop.secrets with its keyrings under the real home,
# and the keychain tests talked to that locked one ("Secret Service: no result found"). Waits a
# bounded time for our daemon to claim the name; a stranger owning it is replaced once, and if
# it still is not ours the run stops with that diagnosis.
ensure_secret_service_is_ours() {
  local data_home=$1 pid attempt replaced_stranger=""
  for attempt in $(seq 1 100); do
    pid=$(bus_name_owner_pid org.freedesktop.secrets)
    if [ -n "$pid" ]; then
      if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "XDG_DATA_HOME=$data_home"; then
        echo "== Secret Service: owned by our unlocked gnome-keyring-daemon (pid $pid)"
        return 0
      fi
      if [ -z "$replaced_stranger" ]; then
        echo "== Secret Service: owned by another daemon (pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)); replacing it"
        kill "$pid" 2>/dev/null || true
        replaced_stranger=1
        eval "$(printf 'lotus-cosigner-test' | gnome-keyring-daemon --replace --unlock --components=secrets)"
        export GNOME_KEYRING_CONTROL
      fi
    fi
    sleep 0.1
  done
  echo "error: org.freedesktop.secrets is owned by pid ${pid:-nobody}, not by the unlocked test keyring" >&2
  echo "  (XDG_DATA_HOME=$data_home). The keychain tests would talk to the wrong, locked keyring." >&2
  echo "  Check for a gnome-keyring-daemon started by D-Bus activation or your desktop session." >&2
  exit 1
}
