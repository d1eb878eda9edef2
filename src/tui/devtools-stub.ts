// Ink imports react-devtools-core only when DEV is set; the binary maps it here so bun can bundle Ink.
export default { initialize() {}, connectToDevTools() {} };
