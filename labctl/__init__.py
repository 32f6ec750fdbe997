"""The lab launcher: owns the processes (engine, registries, JupyterLab) that `./lab` starts."""

__all__: list[str] = []
