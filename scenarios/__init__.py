"""txlab's built-in scenarios (installed as the package txlab_scenarios).

Each module defines SCENARIO with the contract in txlab.scenario; txlab loads
them by file path, exactly as it loads a user's scenario file.
"""
