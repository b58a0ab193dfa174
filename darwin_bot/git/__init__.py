"""The repository: branches, worktrees, commit trailers, git's own locks and the run lock."""
