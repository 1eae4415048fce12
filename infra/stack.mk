# Docker Compose stack targets; included from the root Makefile.
#
#   make stack-up        build and start the whole stack from infra/.env, wait until healthy
#   make stack-down      stop it (volumes kept; STACK_DOWN_FLAGS=-v removes them)
#   make verify          the requirements of docs/deploy.md against the running stack
#   make stack-backup    take a backup now (infra/backups)
#   make restore BACKUP=infra/backups/docuseek-....dump [CONFIRM=yes]
#                        restore it, migrate, rebuild the search index
#   make stack-test      the whole stack on a local Docker engine, offline (root; CI)
#   make stack-test-if-enabled
#                        the last step of `make test`: DOCUSEEK_STACK_TEST=0 skips the
#                        stack test, =1 installs an engine and runs it; unset, it runs
#                        where an engine answers and we are root
#
# STACK_ENV (default infra/.env), STACK_PROJECT (compose project name) and
# STACK_SKIP (services not deployed, e.g. STACK_SKIP=grafana) adjust them.

STACK_ENV ?= infra/.env
STACK_PROJECT ?=
STACK_SKIP ?=
STACK_DOWN_FLAGS ?=
STACK_COMPOSE = docker compose -f infra/compose.yaml --env-file $(STACK_ENV) $(if $(STACK_PROJECT),-p $(STACK_PROJECT))

.PHONY: stack-test stack-test-if-enabled stack-up stack-down verify restore stack-backup stack-engine

stack-engine:
	bash scripts/stack/install-engine.sh

stack-test:
	bash scripts/stack/stack-test.sh

stack-test-if-enabled:
	@case "$(DOCUSEEK_STACK_TEST)" in \
	  0) echo "DOCUSEEK_STACK_TEST=0: stack test skipped" ;; \
	  1) $(MAKE) --no-print-directory stack-test ;; \
	  *) if [ "$$(id -u)" = 0 ] && docker info >/dev/null 2>&1; then \
	       $(MAKE) --no-print-directory stack-test; \
	     else \
	       echo "no Docker engine: stack test not run (DOCUSEEK_STACK_TEST=1 installs one and runs it)"; \
	     fi ;; \
	esac

stack-up:
	@test -f $(STACK_ENV) || { echo "$(STACK_ENV) missing: cp infra/.env.example $(STACK_ENV) and fill in the secrets"; exit 1; }
	$(STACK_COMPOSE) up -d --build --wait --wait-timeout 600

stack-down:
	$(STACK_COMPOSE) down $(STACK_DOWN_FLAGS)

verify:
	python3 scripts/stack/verify.py --env-file $(STACK_ENV) $(if $(STACK_PROJECT),-p $(STACK_PROJECT)) $(foreach s,$(STACK_SKIP),--skip-service $(s))

stack-backup:
	$(STACK_COMPOSE) exec -T backup bash /opt/docuseek/backup.sh once

restore:
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=infra/backups/docuseek-<time>.dump [CONFIRM=yes]"; exit 2; }
	bash scripts/stack/restore.sh --env-file $(STACK_ENV) $(if $(STACK_PROJECT),-p $(STACK_PROJECT)) $(if $(filter yes,$(CONFIRM)),--yes) $(BACKUP)
