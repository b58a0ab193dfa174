#!/usr/bin/env bash
# Pre-job hook for the self-hosted GPU runner (ACTIONS_RUNNER_HOOK_JOB_STARTED).
#
# Why: the `evaluate` jobs run LLM-written code, and in a public repository a
# fork's pull request runs the workflow files of its own merge commit, which can
# ask for `runs-on: [self-hosted, linux, gpu]`. Nothing in darwin.yml can stop
# a workflow file it does not control; the runner can. A pre-job script that
# exits non-zero fails the job before any of its steps run (GitHub docs,
# "Running scripts before or after a job"), and it sees the job's default
# variables and the event payload (GITHUB_EVENT_PATH).
#
# Install a copy from a trusted checkout somewhere outside the runner's work
# folder, and in the runner's .env:
#   ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/darwin/job-started.sh
#   DARWIN_RUNNER_REPOSITORY=owner/name      # the one repository it serves
#   DARWIN_RUNNER_WORKFLOW=darwin.yml        # optional, the default
#   DARWIN_RUNNER_DEFAULT_BRANCH=main        # optional: the default branch, if you
#                                            # would rather not read it from the event
#
# It accepts a job only when all of these hold:
#   * the repository is DARWIN_RUNNER_REPOSITORY;
#   * the event is workflow_dispatch, schedule or issues (never a pull request);
#   * the workflow file is DARWIN_RUNNER_WORKFLOW on the default branch
#     (GITHUB_WORKFLOW_REF), so neither a fork nor another branch's copy runs.
set -euo pipefail

deny() {
  echo "::error title=darwin runner::refusing this job: $*"
  exit 1
}

want_repo="${DARWIN_RUNNER_REPOSITORY:-}"
workflow="${DARWIN_RUNNER_WORKFLOW:-darwin.yml}"
[ -n "$want_repo" ] || deny "DARWIN_RUNNER_REPOSITORY is not set in the runner's .env"
[ "${GITHUB_REPOSITORY:-}" = "$want_repo" ] || deny "repository ${GITHUB_REPOSITORY:-?} is not $want_repo"

case "${GITHUB_EVENT_NAME:-}" in
  workflow_dispatch|schedule|issues) ;;
  *) deny "event ${GITHUB_EVENT_NAME:-?} may not run on this runner" ;;
esac

# The default branch: the runner's own setting if it has one; else the event payload's
# (GitHub's, not the workflow's). A `schedule` payload has no `repository` object (it is
# {"schedule": "<cron>"}), but GitHub starts scheduled runs only on the default branch,
# so there the ref the run was started on is it.
default_branch="${DARWIN_RUNNER_DEFAULT_BRANCH:-}"
if [ -z "$default_branch" ]; then
  default_branch="$(python3 -c 'import json, sys; print((json.load(open(sys.argv[1])).get("repository") or {}).get("default_branch") or "")' \
    "${GITHUB_EVENT_PATH:?}" 2>/dev/null)" || deny "cannot read the event payload ${GITHUB_EVENT_PATH}"
fi
if [ -z "$default_branch" ] && [ "$GITHUB_EVENT_NAME" = schedule ]; then
  case "${GITHUB_REF:-}" in
    refs/heads/?*) default_branch="${GITHUB_REF#refs/heads/}" ;;
  esac
fi
[ -n "$default_branch" ] || deny "cannot tell the default branch (set DARWIN_RUNNER_DEFAULT_BRANCH in the runner's .env)"
expected="$want_repo/.github/workflows/$workflow@refs/heads/$default_branch"
[ "${GITHUB_WORKFLOW_REF:-}" = "$expected" ] || deny "workflow ${GITHUB_WORKFLOW_REF:-?} is not $expected"

echo "darwin runner: accepted $GITHUB_EVENT_NAME job of $expected"
