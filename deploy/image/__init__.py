"""Images: tags and labels from git, the build context, and the build itself."""
