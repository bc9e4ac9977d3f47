/**
 * Whether an image reference lies under one of the repository folders a workshop may use (each
 * ending in `/`). A path with an empty, `.` or `..` segment is refused outright, so no spelling
 * can climb out of an allowed folder.
 */
export function imageAllowed(image: string, folders: readonly string[]): boolean {
  const path = image.replace(/@.*$/, '').replace(/:[^/]*$/, '');
  if (path.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    return false;
  }
  return folders.some((folder) => folder.length > 1 && image.startsWith(folder));
}
