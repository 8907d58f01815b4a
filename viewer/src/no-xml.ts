// Stands in for xmlbuilder2 in the viewer bundle. vtk.js reaches it only through its XML mesh
// reader/writer (Cornerstone's mesh cache), which this viewer never uses; the real package and its
// dependencies were a quarter of the script every viewer page evaluates before the first image.
export function create(): never {
  throw new Error('XML meshes are not supported by this viewer');
}
