#!/bin/bash
# Carried by the project (from the team's shared notes): installs a throwaway
# Redmine 5.0 from Debian packages for the integration tests, working around
# the Bundler/postinst pitfall described below.
# redmine-up.sh [PORT] [KEYFILE]
#
# Brings up a throwaway Redmine 5.0 (Debian 12 packages, SQLite) on
# 127.0.0.1:PORT (default 3000) for integration tests: installs the packages
# if needed, gives this port its own fresh copy of a pristine database,
# enables the REST API, gives the admin user a random API key (written to
# KEYFILE, default $RUN_DIR/api-key), starts WEBrick in the background,
# waits until the API answers with that key, and prints the base URL.
# Admin login also works with HTTP Basic admin:admin.
# Needs root. Stop it with redmine-down.sh PORT.
#
# Environment:
#   REDMINE_STATE   state root (default /var/lib/redmine-test)
#   REDMINE_TIMEOUT seconds to wait for readiness (default 180)
#   REDMINE_KEEP_DB=1 reuse this port's database from an earlier run
set -euo pipefail

PORT=${1:-3000}
STATE=${REDMINE_STATE:-/var/lib/redmine-test}
RUN_DIR=$STATE/$PORT
KEYFILE=${2:-$RUN_DIR/api-key}
TIMEOUT=${REDMINE_TIMEOUT:-180}
APP=/usr/share/redmine
PRISTINE=$STATE/pristine.sqlite3
DB=$RUN_DIR/redmine.sqlite3
PIDFILE=$RUN_DIR/server.pid
LOG=$RUN_DIR/server.log
DEBIAN_DB=/var/lib/dbconfig-common/sqlite3/redmine/instances/default/redmine_default
URL=http://127.0.0.1:$PORT

say() { echo "redmine-up: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
case $PORT in ''|*[!0-9]*) die "bad port '$PORT'";; esac
mkdir -p "$STATE"

configured() {
	for p in redmine redmine-sqlite; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
	done
}

# Bundler 2.3.27 (from the ruby3.1 security update) treats a gem whose
# directory under .../gems/ is missing as "deleted" and tries to reinstall
# it; many Debian-packaged gems ship only a gemspec, so `bundle install
# --local` (run by redmine's postinst) fails.  Creating the empty
# directories makes Bundler accept the installed gems.
fix_gem_dirs() {
	command -v ruby >/dev/null || return 0
	ruby -rfileutils -e 'Gem::Specification.each { |s|
		next if s.default_gem?
		d = s.full_gem_path
		FileUtils.mkdir_p(d) unless File.directory?(d) }'
}

# ---------------------------------------------------------------- install
installed_now=0
if ! command -v curl >/dev/null; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi
if ! configured; then
	t0=$(date +%s)
	say "installing redmine + redmine-sqlite"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	debconf-set-selections <<-'EOF'
	redmine redmine/current-instances string default
	redmine redmine/instances/default/dbconfig-install boolean true
	redmine redmine/instances/default/database-type select sqlite3
	redmine redmine/instances/default/default-language select en
	EOF
	# The first attempt may stop in redmine's postinst (Bundler, see above);
	# everything is unpacked by then, so fix and finish configuring.
	if ! apt-get install -y -qq --no-install-recommends redmine redmine-sqlite >"$STATE/install.log" 2>&1; then
		say "postinst failed as expected on this Bundler; applying gem-dir fix"
	fi
	fix_gem_dirs
	dpkg --configure -a >>"$STATE/install.log" 2>&1 || true
	configured || die "redmine did not configure; see $STATE/install.log"
	installed_now=1
	say "installed in $(( $(date +%s) - t0 ))s"
fi

# Webrick is not in Redmine's Gemfile (Ruby 3.x no longer bundles it);
# Gemfile.local is Redmine's documented hook for extra gems.
if ! grep -qs webrick "$APP/Gemfile.local"; then
	echo "gem 'webrick'" >>"$APP/Gemfile.local"
fi
if ! grep -qs '^    webrick ' /var/lib/redmine/Gemfile.lock; then
	fix_gem_dirs
	(cd "$APP" && bundle install --local --quiet >/dev/null 2>&1) ||
		die "bundle install --local failed in $APP"
	chown www-data:www-data /var/lib/redmine/Gemfile.lock
fi

# ---------------------------------------------------------------- database
mkdir -p "$STATE" "$RUN_DIR"
chown www-data:www-data "$RUN_DIR"

# Stop an earlier server on this port that we started.
if [ -s "$PIDFILE" ]; then
	"$(dirname "$0")/redmine-down.sh" "$PORT" || true
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
	die "port $PORT is already in use"
fi

has_schema() { [ "$(sqlite3 "$1" "SELECT count(*) FROM trackers" 2>/dev/null)" -gt 0 ] 2>/dev/null; }
has_schema "$PRISTINE" || rm -f "$PRISTINE"
if [ ! -s "$PRISTINE" ]; then
	if [ "$installed_now" = 1 ] && has_schema "$DEBIAN_DB"; then
		# The package just built this one: schema + default data, untouched.
		cp "$DEBIAN_DB" "$PRISTINE"
	else
		say "building pristine database (migrate + default data)"
		rm -rf "$STATE/build"
		install -o www-data -g www-data -m 0755 -d "$STATE/build"
		(cd "$APP" && setpriv --reuid=www-data --regid=www-data --init-groups \
			env HOME="$STATE/build" REDMINE_INSTANCE=default RAILS_ENV=production \
			REDMINE_LANG=en SCHEMA=/dev/null DATABASE_URL="sqlite3:$STATE/build/db.sqlite3" \
			bundle exec rake db:migrate redmine:load_default_data \
			>"$STATE/build/rake.log" 2>&1) || die "see $STATE/build/rake.log"
		has_schema "$STATE/build/db.sqlite3" || die "built database is empty"
		mv "$STATE/build/db.sqlite3" "$PRISTINE"
	fi
	chmod 0644 "$PRISTINE"
fi

if [ "${REDMINE_KEEP_DB:-0}" != 1 ] || [ ! -s "$DB" ]; then
	rm -f "$DB" "$DB-journal"
	install -o www-data -g www-data -m 0660 "$PRISTINE" "$DB"
fi

KEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
NOW="strftime('%Y-%m-%d %H:%M:%f','now')"
sqlite3 "$DB" <<-EOF
	UPDATE users SET must_change_passwd = 0 WHERE login = 'admin';
	DELETE FROM tokens WHERE action = 'api'
	  AND user_id = (SELECT id FROM users WHERE login = 'admin');
	INSERT INTO tokens (user_id, action, value, created_on, updated_on)
	  SELECT id, 'api', '$KEY', $NOW, $NOW FROM users WHERE login = 'admin';
	DELETE FROM settings WHERE name = 'rest_api_enabled';
	INSERT INTO settings (name, value, updated_on) VALUES ('rest_api_enabled', '1', $NOW);
EOF
chown www-data:www-data "$DB"
mkdir -p "$(dirname "$KEYFILE")"
(umask 077 && printf '%s\n' "$KEY" >"$KEYFILE")

# ---------------------------------------------------------------- start
t0=$(date +%s%N)
cd "$APP"
rm -f "$PIDFILE"
setsid -w setpriv --reuid=www-data --regid=www-data --init-groups \
	env HOME="$RUN_DIR" REDMINE_INSTANCE=default RAILS_ENV=production \
	DATABASE_URL="sqlite3:$DB" \
	rackup -s webrick -o 127.0.0.1 -p "$PORT" -E production -P "$PIDFILE" config.ru \
	</dev/null >"$LOG" 2>&1 &
launcher=$!

deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Redmine-API-Key: $KEY" \
		"$URL/users/current.json" 2>/dev/null) || true
	[ "$code" = 200 ] && break
	if ! kill -0 "$launcher" 2>/dev/null && [ ! -s "$PIDFILE" ]; then
		tail -n 20 "$LOG" >&2; die "server exited during start-up (log: $LOG)"
	fi
	[ "$(date +%s)" -lt "$deadline" ] || { tail -n 20 "$LOG" >&2; die "not ready after ${TIMEOUT}s (last HTTP $code)"; }
	sleep 0.2
done
say "ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms, pid $(cat "$PIDFILE"), key in $KEYFILE, log $LOG"
echo "$URL"
