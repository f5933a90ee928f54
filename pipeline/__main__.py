from thresher.pipeline.cli import entry

entry()
