"""Grafana dashboards as code over the job's Redis figures, their provisioning and their push."""
