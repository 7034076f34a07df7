"""jewelgan.models"""
