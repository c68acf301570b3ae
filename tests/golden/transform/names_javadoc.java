/*
 * Copyright (c) 2015 Example Corp. Licensed under the MIT License.
 */
package com.example.feed;

/**
 * Parses feeds.
 *
 * @author Jane Doe
 * @author jdoe
 * @since 1.2
 */
public class FeedParser {
    // Maintainer: Bob Lee <bob.lee@feedmail.org>
    private final String author = getAuthor();
    private static final String BANNER = "@author Jane Doe";
    /* Written by John Smith. */
    public String author() { return author; }  // Copyright 2019 Jane Doe All Rights Reserved
}
