"""RunPod's REST v2 contract, in one leaf package.

Each RunPod fact rpdeploy relies on is written here once: the vendored official spec
(`spec/`) and validation against it (`schemas`), server defaults (`defaults`), release
diffs (`release`), secret references and names (`secrets`), endpoint rules
(`endpoint`) and the hardware catalog (`catalog`, data in `catalog.json`). Config,
render, the API client and the emulator use it; it imports nothing from rpdeploy but
`deploy.errors`.
"""
