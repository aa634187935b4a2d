# Shared helpers for the scripts in this folder (sourced, not executed).
# shellcheck shell=bash
VENV="${MLFLOW_LAB_VENV:-$ROOT/.venv}"
CACHE="${MLFLOW_LAB_CACHE:-$ROOT/.cache}"
export PATH="$VENV/bin:$PATH"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Image names: one place, used by setup, molecule (molecule/shared/create.yml
# reads the same variables) and the lab.
distro_image() {
  case "$1" in
    debian12) echo "${MLFLOW_LAB_IMAGE_DEBIAN12:-mlflow-lab/debian:12}" ;;
    debian13) echo "${MLFLOW_LAB_IMAGE_DEBIAN13:-mlflow-lab/debian:13}" ;;
    ubuntu2404) echo "${MLFLOW_LAB_IMAGE_UBUNTU2404:-mlflow-lab/ubuntu:24.04}" ;;
    ubuntu2604) echo "${MLFLOW_LAB_IMAGE_UBUNTU2604:-mlflow-lab/ubuntu:26.04}" ;;
    # Not a VM: the base image of the MLflow container image (docker mode),
    # standing in for a public Python image no registry can serve here.
    python311) echo "${MLFLOW_LAB_IMAGE_PYTHON:-mlflow-lab/python:3.11}" ;;
    *) die "unknown distro '$1' (known: debian12 debian13 ubuntu2404 ubuntu2604 python311)" ;;
  esac
}
