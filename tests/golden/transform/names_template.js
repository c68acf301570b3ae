// Authors: Jane Doe, John Smith
const author = require('./author');
const banner = `
// Author: Jane Doe
`;
/* Maintainer: Bob Lee */
module.exports = { author, banner, writtenBy: 'Written by Jane Doe' };
