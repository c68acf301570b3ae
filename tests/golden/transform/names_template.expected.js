// Authors: <NAME>, <NAME>
const author = require('./author');
const banner = `
// Author: Jane Doe
`;
/* Maintainer: <NAME> */
module.exports = { author, banner, writtenBy: 'Written by Jane Doe' };
