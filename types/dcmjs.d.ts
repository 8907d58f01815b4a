// dcmjs ships no types; we use a small part of its API (Part 10 read/write, naturalize).
declare module 'dcmjs' {
  const dcmjs: any;
  export default dcmjs;
}
declare module 'dcmjs-dimse' {
  const dimse: any;
  export default dimse;
}
