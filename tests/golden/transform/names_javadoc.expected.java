package com.example.feed;

/**
 * Parses feeds.
 *
 * @author <NAME>
 * @author <NAME>
 * @since 1.2
 */
public class FeedParser {
    // Maintainer: <NAME> <<EMAIL>>
    private final String author = getAuthor();
    private static final String BANNER = "@author Jane Doe";
    /* Written by <NAME>. */
    public String author() { return author; }  // Copyright 2019 <NAME> All Rights Reserved
}
